"""An item encoder for MovieLens: ID, a frozen text embedding, and metadata (genres, year), gated.

    x_id   = LN(E_id[i])                                  (N, D)  what the ID alone memorises
    x_text = LN(W_t t_i)                                  (N, D)  t_i: frozen all-MiniLM-L6-v2 embedding (Dt,)
    x_meta = LN(W_g g_i + E_year[y_i])                    (N, D)  g_i: genre multi-hot (G,), y_i: year bucket
    a      = softmax_m(v^T tanh(W x_m + u_m))             (N, M)  one weight per modality, summing to 1
    f      = W_o sum_m a_m x_m                            (N, D)  the fused item vector

The fusion is notebook 12's :class:`~course_lib.models.multimodal.GatedModalityFusion`
(softmax over the modality axis). ``PAD_ID`` maps to the zero vector. The features are
non-persistent buffers: they move with ``.to(device)`` but are data, not weights, so they are
not in the state dict (give them again when loading).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.item_features import NUM_YEAR_BUCKETS, MetadataFeatures, features_fingerprint
from .base import FeatureItemEncoder, check_fields, init_table
from .multimodal.fusion import FusionOutput, GatedModalityFusion
from .multimodal.item_encoder import ItemEncoding

METADATA_MODALITIES: tuple[str, ...] = ("id", "text", "metadata")  # the M axis of the fusion, in this order


@dataclass(frozen=True)
class MetadataEncoderConfig:
    num_items: int  # I; item ids 1..I, PAD_ID = 0
    text_dim: int = 384  # Dt, size of one frozen text embedding
    num_genres: int = 19  # G, genre flags
    num_year_buckets: int = NUM_YEAR_BUCKETS  # year bucket ids 0..num_year_buckets - 1 (0 = unknown)
    d_model: int = 64  # D, size of every modality vector and of the fused vector
    init_std: float = 0.02  # standard deviation of the ID and year embeddings
    fusion: str = "gated"  # "gated": LayerNorm each modality, softmax weights over them; "sum": add the raw vectors

    def __post_init__(self) -> None:
        check_fields(self, sizes=("num_items", "text_dim", "num_genres", "num_year_buckets", "d_model"), scales=("init_std",))
        if self.fusion not in ("gated", "sum"):
            raise ValueError(f"MetadataEncoderConfig.fusion must be 'gated' or 'sum', got {self.fusion!r}.")


class MetadataItemEncoder(FeatureItemEncoder):
    """Item ids -> gated fusion of ID, projected text embedding and metadata.

    An item encoder (:mod:`course_lib.models.item_encoders`), like
    :class:`~course_lib.models.multimodal.MultimodalItemEncoder`: ``table()`` for the whole
    catalogue, ``encode(items)`` with the modality vectors and weights.

    Args:
        config: a :class:`MetadataEncoderConfig`.
        features: :class:`MetadataFeatures`, rows = item ids 0..I.
    """

    modalities = METADATA_MODALITIES

    def __init__(self, config: MetadataEncoderConfig, features: MetadataFeatures) -> None:
        super().__init__()
        expected = (config.num_items + 1, config.text_dim)
        if tuple(features.text.shape) != expected or features.genres.shape[1] != config.num_genres:
            raise ValueError(
                f"features must have text (I + 1, Dt) = {expected} and genres (I + 1, {config.num_genres}); "
                f"got {tuple(features.text.shape)} and {tuple(features.genres.shape)}."
            )
        self.config = config
        self.features_fingerprint = features_fingerprint(features)  # saved with the model, checked on load
        d = config.d_model
        self.register_buffer("text_features", features.text.float(), persistent=False)  # (I + 1, Dt), frozen
        self.register_buffer("genres", features.genres.float(), persistent=False)  # (I + 1, G)
        self.register_buffer("year_buckets", features.year_buckets.long(), persistent=False)  # (I + 1,)
        self.id_embedding = nn.Embedding(config.num_items + 1, d, padding_idx=PAD_ID)  # E_id
        self.year_embedding = nn.Embedding(config.num_year_buckets, d)  # E_year
        for table in (self.id_embedding, self.year_embedding):
            init_table(table, config.init_std)
        self.text_projection = nn.Linear(config.text_dim, d, bias=False)  # W_t
        self.genre_projection = nn.Linear(config.num_genres, d, bias=False)  # W_g
        self.modality_norms = nn.ModuleList(nn.LayerNorm(d) for _ in METADATA_MODALITIES)
        self.fusion = GatedModalityFusion(len(METADATA_MODALITIES), d)

    def encode(self, items: Tensor) -> ItemEncoding:
        """Encode a flat list of items, keeping the modality vectors and weights.

        Args:
            items: (N,) long item ids in 0..I (``PAD_ID`` gives the zero vector).

        Returns:
            An :class:`~course_lib.models.multimodal.ItemEncoding` with vectors (N, D),
            modality_vectors (N, M, D) and modality_weights (N, M) (rows sum to 1).
        """
        self.check_items(items)
        vectors = [
            self.id_embedding(items),  # (N, D)
            self.text_projection(self.text_features[items]),  # (N, Dt) -> (N, D)
            self.genre_projection(self.genres[items]) + self.year_embedding(self.year_buckets[items]),  # (N, D)
        ]
        if self.config.fusion == "sum":  # E[i] + W_t t_i + W_g g_i + E_year[y_i], as text SASRec adds ID and text
            stacked = torch.stack(vectors, dim=1)  # (N, M, D)
            fused = FusionOutput(stacked.sum(dim=1))
        else:
            stacked = torch.stack([norm(v) for norm, v in zip(self.modality_norms, vectors)], dim=1)  # (N, M, D)
            fused = self.fusion(stacked)
        real = (items != PAD_ID).unsqueeze(-1).to(fused.vector.dtype)  # (N, 1)
        return ItemEncoding(
            vectors=fused.vector * real, modalities=METADATA_MODALITIES, modality_vectors=stacked,
            modality_weights=fused.modality_weights,
        )
