"""Item encoders: how a model turns the catalogue into vectors, behind one small protocol.

A sequence model needs a vector for every item it reads (the history) and for every item it
scores (the tied output layer). Where the vectors come from is one exchangeable part:

    "id"        F[i] = E[i]                    a learned table (SASRec, notebook 08)
    "text"      F[i] = W t_i                   t_i = frozen text embedding (Dt,), W: (D, Dt) learned (notebook 11)
    "id+text"   F[i] = E[i] + W t_i
    multimodal  F[i] = Fusion(ID, image, text, price)      (notebook 12, :mod:`.multimodal`)
    metadata    F[i] = Fusion(ID, text embedding, genres + year)   (notebook 13, :mod:`.metadata_encoder`)

Every item encoder is an ``nn.Module`` with ``num_items`` (I), ``d_model`` (D) and
``table() -> (I + 1, D)``: the vector of every item id, row ``PAD_ID`` zero. A model computes
the table **once per call** and passes it explicitly to whatever needs it; it is never
stored on the module. :func:`lookup` reads the rows of given item ids.

The text embeddings ``t`` are a buffer, never trained; only ``W`` (and ``E`` where used)
learn. An item the model never saw in training still gets a meaningful vector ``W t_i``
from its text: the point of text features for cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.item_features import MetadataFeatures, MultimodalFeatures
from .base import FeatureItemEncoder, check_fields, init_table
from .metadata_encoder import MetadataEncoderConfig, MetadataItemEncoder
from .multimodal.item_encoder import MultimodalEncoderConfig, MultimodalItemEncoder


@runtime_checkable
class ItemEncoder(Protocol):
    """What every item encoder offers (an ``nn.Module`` in practice)."""

    @property
    def num_items(self) -> int:  # I; item ids 1..I, PAD_ID = 0
        ...

    @property
    def d_model(self) -> int:  # D
        ...

    def table(self) -> Tensor:  # (I + 1, D): row i = item i's vector, row PAD_ID = 0
        ...


def lookup(table: Tensor, items: Tensor) -> Tensor:
    """Rows of the item table for item ids of any shape: (...) -> (..., D); ``PAD_ID`` -> its zero row.

    ``padding_idx`` keeps the padding row out of every gradient, as in ``nn.Embedding``.
    """
    return F.embedding(items, table, padding_idx=PAD_ID)


class ItemLookup(nn.Module):
    """:func:`lookup` as a module, so that an explanation can hook the history's item vectors."""

    def forward(self, items: Tensor, table: Tensor) -> Tensor:
        """(B, L) item ids, (I + 1, D) table -> (B, L, D) item vectors."""
        return lookup(table, items)


class IdEmbedding(nn.Embedding):
    """A learned vector per item id: ``F[i] = E[i]``, normal(0, init_std), row ``PAD_ID`` zero.

    Args:
        num_items: I.
        d_model: D.
        init_std: standard deviation of the initialisation.
    """

    def __init__(self, num_items: int, d_model: int, init_std: float = 0.02) -> None:
        super().__init__(num_items + 1, d_model, padding_idx=PAD_ID)  # (I + 1, D)
        init_table(self, init_std)

    @property
    def num_items(self) -> int:
        return self.num_embeddings - 1

    @property
    def d_model(self) -> int:
        return self.embedding_dim

    def table(self) -> Tensor:
        """(I + 1, D): the table itself (a lookup in it is exactly ``nn.Embedding``'s forward)."""
        return self.weight


@dataclass(frozen=True)
class TextItemEncoderConfig:
    num_items: int  # I; item ids 1..I, PAD_ID = 0
    text_dim: int = 384  # Dt, size of one frozen text embedding (384 for all-MiniLM-L6-v2)
    d_model: int = 64  # D, size of every item vector
    with_id: bool = False  # also add a learned ID vector: F[i] = E[i] + W t_i ("id+text")
    init_std: float = 0.02  # standard deviation of the ID table's initialisation

    def __post_init__(self) -> None:
        check_fields(self, sizes=("num_items", "text_dim", "d_model"), scales=("init_std",))


class TextItemEncoder(FeatureItemEncoder):
    """``F[i] = W t_i`` (``"text"``) or ``E[i] + W t_i`` (``"id+text"``) from frozen text embeddings.

    Args:
        config: a :class:`TextItemEncoderConfig`.
        text_embeddings: (I, Dt) frozen text embedding of each item; row c is item id c + 1.
    """

    def __init__(self, config: TextItemEncoderConfig, text_embeddings: Tensor) -> None:
        super().__init__()
        expected = (config.num_items, config.text_dim)
        if not isinstance(text_embeddings, Tensor) or tuple(text_embeddings.shape) != expected:
            shape = tuple(text_embeddings.shape) if isinstance(text_embeddings, Tensor) else type(text_embeddings).__name__
            raise ValueError(f"text_embeddings must be (I, Dt) = {expected} (row c = item c + 1), got {shape}.")
        if not bool(torch.isfinite(text_embeddings).all()):
            raise ValueError("text_embeddings contain NaN or infinite values; recompute them.")
        self.config = config
        self.id_embedding = IdEmbedding(config.num_items, config.d_model, config.init_std) if config.with_id else None  # E
        padded = torch.cat([text_embeddings.new_zeros(1, config.text_dim), text_embeddings.detach()])  # (I + 1, Dt)
        self.register_buffer("text_features", padded.float(), persistent=False)  # frozen; row PAD_ID = 0
        self.text_projection = nn.Linear(config.text_dim, config.d_model, bias=False)  # W

    def table(self) -> Tensor:
        """(I + 1, D): ``W t_i`` (+ ``E[i]``) for every item; row ``PAD_ID`` is zero (t = 0, no bias)."""
        vectors = self.text_projection(self.text_features)  # (I + 1, Dt) -> (I + 1, D)
        if self.id_embedding is not None:
            vectors = vectors + self.id_embedding.weight
        return vectors


ItemEncoderConfig = MultimodalEncoderConfig | MetadataEncoderConfig | TextItemEncoderConfig


def make_item_encoder(config: ItemEncoderConfig, features: MultimodalFeatures | MetadataFeatures | Tensor) -> nn.Module:
    """The item encoder a config describes, over the features it needs.

    Args:
        config: :class:`MultimodalEncoderConfig` (features: :class:`MultimodalFeatures`),
            :class:`MetadataEncoderConfig` (features: :class:`MetadataFeatures`) or
            :class:`TextItemEncoderConfig` (features: the (I, Dt) text embeddings).
        features: the items' side information.
    """
    kinds = (
        (MultimodalEncoderConfig, MultimodalFeatures, MultimodalItemEncoder),
        (MetadataEncoderConfig, MetadataFeatures, MetadataItemEncoder),
        (TextItemEncoderConfig, Tensor, TextItemEncoder),
    )
    for config_type, features_type, encoder_type in kinds:
        if isinstance(config, config_type):
            if not isinstance(features, features_type):
                raise TypeError(
                    f"a {config_type.__name__} needs {features_type.__name__} features, got {type(features).__name__}."
                )
            return encoder_type(config, features)
    known = ", ".join(kind[0].__name__ for kind in kinds)
    raise TypeError(f"no item encoder for a {type(config).__name__}; known: {known}.")
