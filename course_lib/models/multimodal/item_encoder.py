"""The multimodal item encoder: item ids -> fused item vectors, from any subset of modalities.

    x_id    = LN(E_id[item])                     (N, D)   the ID embedding (memorises each item)
    x_image = LN(PatchEncoder(image).pooled)     (N, D)   shape and colour
    x_text  = LN(TextEncoder(tokens).pooled)     (N, D)   brand and material
    x_price = LN(E_price[bucket])                (N, D)   the price bucket
    f       = Fusion([x_m for m in modalities])  (N, D)

An erasure check (``erased``, see :mod:`.erasure`) removes chosen modalities from an already
trained encoder at evaluation: concatenation sees a zero vector in their place, the gated
fusion drops them from its softmax (the other weights renormalise).

Each modality vector is layer-normalised so that no modality wins the fusion by its scale
alone. ``PAD_ID`` always maps to the zero vector (as an item embedding table's padding row).
The features of every item are held as non-persistent buffers: they move with
``.to(device)`` but are not saved in the state dict (they are data, not weights).

It is an item encoder (:mod:`course_lib.models.item_encoders`): ``table()`` encodes the whole
catalogue, once per call of the model that owns it; ``encode(items)`` keeps every intermediate
result (modality vectors, fusion weights, the image and text encoders' attention) for a picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...constants import PAD_ID
from ...data.item_features import MultimodalFeatures, features_fingerprint
from ..base import FeatureItemEncoder, init_table
from .fusion import FUSIONS, FusionKind, make_fusion
from .patch_encoder import PatchEncoder, PatchEncoderConfig
from .states import ModalityStates
from .text_encoder import TextEncoder, TextEncoderConfig

MODALITIES: tuple[str, ...] = ("id", "image", "text", "price")  # every modality, in the fusion's order


@dataclass(frozen=True)
class MultimodalEncoderConfig:
    num_items: int  # I; item ids 1..I, PAD_ID = 0
    vocab_size: int  # text token ids 0..vocab_size - 1 (len(world.vocabulary))
    modalities: tuple[str, ...] = MODALITIES  # which of MODALITIES to use (any non-empty subset)
    fusion: FusionKind = "concat"  # "concat", "gated" or "cross" (cross needs image and text)
    d_model: int = 32  # D, size of every modality vector and of the fused vector
    image_size: int = 24  # S, images are (3, S, S)
    patch_size: int = 6  # p, side of one image patch
    n_heads: int = 2  # H, in the image/text encoders and the cross-attention
    n_layers: int = 1  # self-attention blocks in the image and in the text encoder
    image_layers: int | None = None  # blocks in the image encoder only (None: n_layers); 0 = linear readout of the patches
    dropout: float = 0.1  # inside the image/text encoders
    num_price_buckets: int = 4  # price bucket ids 0..num_price_buckets - 1
    text_pad_id: int = 0  # token id of text padding
    init_std: float = 0.02  # standard deviation of the ID and price embeddings
    erased: tuple[str, ...] = ()  # modalities removed at evaluation (an erasure check); () for training

    def __post_init__(self) -> None:
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES} without repeats, got {self.modalities}.")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}.")
        if self.fusion == "cross" and not {"image", "text"} <= set(self.modalities):
            raise ValueError(f"cross-modal fusion needs 'image' and 'text' among the modalities, got {self.modalities}.")
        if self.image_layers is not None and (
            isinstance(self.image_layers, bool) or not isinstance(self.image_layers, int) or self.image_layers < 0
        ):
            raise ValueError(f"image_layers must be None (= n_layers) or an int >= 0, got {self.image_layers!r}.")
        if self.erased:
            if not set(self.erased) <= set(self.modalities) or len(set(self.erased)) != len(self.erased):
                raise ValueError(f"erased must name modalities in use {self.modalities} without repeats, got {self.erased}.")
            if len(self.erased) == len(self.modalities):
                raise ValueError(f"erasing every modality {self.erased} leaves nothing to fuse; keep at least one.")
            if self.fusion == "cross":
                raise ValueError(
                    "erasure is defined for the concat and gated fusions only: the cross-modal joint vector "
                    "mixes text and image, so removing one modality's vector does not remove it."
                )

    @property
    def ordered(self) -> tuple[str, ...]:
        """The chosen modalities in the fixed order of MODALITIES (the M axis of the fusion)."""
        return tuple(m for m in MODALITIES if m in self.modalities)


@dataclass(frozen=True)
class ItemEncoding:
    """The fused vectors and what led to them (see :meth:`MultimodalItemEncoder.encode`)."""

    vectors: Tensor  # (N, D) fused item vectors (zero for PAD_ID)
    modalities: tuple[str, ...]  # the M modalities, in the order of the M axis
    modality_vectors: Tensor  # (N, M, D) each modality's vector before fusion
    modality_weights: Tensor | None = None  # (N, M) gated fusion only
    cross_weights: Tensor | None = None  # (N, H, T, P) cross-modal fusion only
    image: ModalityStates | None = None  # the image encoder's output, if used
    text: ModalityStates | None = None  # the text encoder's output, if used


class MultimodalItemEncoder(FeatureItemEncoder):
    """Item ids -> fused multimodal vectors.

    Args:
        config: a :class:`MultimodalEncoderConfig`.
        features: every item's :class:`~course_lib.data.item_features.MultimodalFeatures`
            (:func:`~course_lib.data.shopworld.shopworld_features`), rows = item ids 0..I.
    """

    def __init__(self, config: MultimodalEncoderConfig, features: MultimodalFeatures) -> None:
        super().__init__()
        if features.num_items != config.num_items:
            raise ValueError(f"features describe {features.num_items} items but config.num_items = {config.num_items}.")
        self.config = config
        self.features_fingerprint = features_fingerprint(features)  # saved with the model, checked on load
        d = config.d_model
        self.register_buffer("images", features.images, persistent=False)  # (I + 1, 3, S, S)
        self.register_buffer("text_tokens", features.text_tokens, persistent=False)  # (I + 1, T)
        self.register_buffer("price_buckets", features.price_buckets, persistent=False)  # (I + 1,)
        used = set(config.modalities)
        self.id_embedding = nn.Embedding(config.num_items + 1, d, padding_idx=PAD_ID) if "id" in used else None
        self.price_embedding = nn.Embedding(config.num_price_buckets, d) if "price" in used else None
        for table in (self.id_embedding, self.price_embedding):
            if table is not None:
                init_table(table, config.init_std)
        self.image_encoder = self.text_encoder = None
        if "image" in used:
            self.image_encoder = PatchEncoder(
                PatchEncoderConfig(
                    image_size=config.image_size, patch_size=config.patch_size, d_model=d,
                    n_heads=config.n_heads, dropout=config.dropout,
                    n_layers=config.n_layers if config.image_layers is None else config.image_layers,
                )
            )
        if "text" in used:
            self.text_encoder = TextEncoder(
                TextEncoderConfig(
                    vocab_size=config.vocab_size, pad_id=config.text_pad_id, d_model=d,
                    n_heads=config.n_heads, n_layers=config.n_layers, dropout=config.dropout,
                )
            )
        # one LayerNorm per modality, in the order of config.ordered: equal scales before fusing
        self.modality_norms = nn.ModuleList(nn.LayerNorm(d) for _ in config.ordered)
        self.fusion = make_fusion(config.fusion, len(config.modalities), d, n_heads=config.n_heads)

    def encode(self, items: Tensor, *, return_attention: bool = False) -> ItemEncoding:
        """Encode a flat list of items and keep every intermediate result.

        Args:
            items: (N,) long item ids in 0..I (``PAD_ID`` gives the zero vector).
            return_attention: also keep the image/text encoders' self-attention weights.

        Returns:
            An :class:`ItemEncoding`.
        """
        self.check_items(items)
        vectors, image, text = [], None, None
        for modality in self.config.ordered:
            if modality == "id":
                vectors.append(self.id_embedding(items))  # (N, D)
            elif modality == "image":
                image = self.image_encoder(self.images[items], return_attention=return_attention)
                vectors.append(image.pooled)  # (N, D)
            elif modality == "text":
                text = self.text_encoder(self.text_tokens[items], return_attention=return_attention)
                vectors.append(text.pooled)  # (N, D)
            else:  # price
                vectors.append(self.price_embedding(self.price_buckets[items]))  # (N, D)
        stacked = torch.stack([norm(v) for norm, v in zip(self.modality_norms, vectors)], dim=1)  # (N, M, D)
        if self.config.erased:
            keep = torch.tensor([m not in self.config.erased for m in self.config.ordered], device=items.device)  # (M,)
            fused = self.fusion(stacked, text=text, image=image, keep=keep)
        else:
            fused = self.fusion(stacked, text=text, image=image)
        real = (items != PAD_ID).unsqueeze(-1).to(fused.vector.dtype)  # (N, 1)
        return ItemEncoding(
            vectors=fused.vector * real, modalities=self.config.ordered, modality_vectors=stacked,
            modality_weights=fused.modality_weights, cross_weights=fused.cross_weights, image=image, text=text,
        )
