"""SASRec whose item vectors come from the multimodal item encoder.

Exactly SASRec (causal self-attention over the history, full-catalogue cross-entropy at
every position), with one change: wherever SASRec looks up an item's embedding, this model
asks the :class:`ItemEncoder` instead. Input vectors and output vectors stay tied, so the
score of item i after position l is ``h_l · f(i)``, with ``f`` built from the item's ID,
image, text and price (any subset), fused by concatenation, gating or cross-attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...data.batch import Batch

from ..encoded_items import EncodedItems
from ..sasrec import SASRec, SASRecConfig
from .features import ItemFeatures
from .item_encoder import ItemEncoder, ItemEncoderConfig


@dataclass(frozen=True)
class MultimodalSASRecConfig:
    sasrec: SASRecConfig  # the sequence model (its d_model and num_items must match item_encoder's)
    item_encoder: ItemEncoderConfig  # how item vectors are built

    def __post_init__(self) -> None:
        if self.sasrec.d_model != self.item_encoder.d_model or self.sasrec.num_items != self.item_encoder.num_items:
            raise ValueError(
                f"sasrec and item_encoder must agree on D and I: sasrec has D={self.sasrec.d_model}, "
                f"I={self.sasrec.num_items}; item_encoder has D={self.item_encoder.d_model}, I={self.item_encoder.num_items}."
            )


class MultimodalSASRec(EncodedItems, SASRec):
    """SASRec over fused multimodal item vectors, behind the shared Recommender interface.

    Args:
        config: a :class:`MultimodalSASRecConfig`.
        features: every item's features, rows = item ids 0..I (:func:`shopworld_features`).
    """

    def __init__(self, config: MultimodalSASRecConfig, features: ItemFeatures) -> None:
        super().__init__(config.sasrec)
        del self.item_embedding  # replaced by the item encoder (which has its own ID table if "id" is used)
        self.multimodal_config = config
        self.item_encoder = ItemEncoder(config.item_encoder, features)

    def score_all(self, batch: Batch) -> Tensor:
        """(B, I) scores of every item; the catalogue is encoded once for the call."""
        with self._one_item_table():
            return super().score_all(batch)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """SASRec's loss; the catalogue is encoded once for the call."""
        with self._one_item_table():
            return super().loss(batch, generator=generator)
