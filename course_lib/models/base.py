"""The one interface every recommender in the course implements.

A recommender is an ``nn.Module`` over a catalogue of items 1..I (``PAD_ID = 0`` is not an
item) with three methods:

* ``loss(batch, *, generator=None) -> scalar``: the training objective on a
  :class:`~course_lib.data.Batch`. Models that sample (negatives, BERT4Rec's masked
  positions) draw from ``generator``, a CPU ``torch.Generator`` the training loop passes,
  then move the draws to the batch's device; this keeps runs repeatable and identical on
  CPU and GPU.
* ``score(batch, items) -> (B, N)``: scores of N candidate item ids per user.
* ``score_all(batch) -> (B, I)``: scores of every item; column ``c`` is item id ``c + 1``.

A model overrides ``score_all`` or ``score`` (or both, when one is cheaper than the
default); the other then comes for free. The evaluation and the training loop use only
this interface. Models never store a device: they read it from the batch's tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.batch import Batch


class Recommender(nn.Module):
    """Base class: subclasses implement ``loss`` and at least one of ``score``/``score_all``."""

    def __init__(self, num_items: int) -> None:
        super().__init__()
        if isinstance(num_items, bool) or not isinstance(num_items, int) or num_items < 1:
            raise ValueError(f"num_items must be a positive int (the catalogue size I), got {num_items!r}.")
        self.num_items = num_items  # I; item ids 1..I, PAD_ID = 0

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Scalar training loss on ``batch``."""
        raise NotImplementedError(f"{type(self).__name__} does not define a training loss.")

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        """Scores (B, N) of candidate item ids ``items`` (B, N), higher = more likely next."""
        if type(self).score_all is Recommender.score_all:
            raise NotImplementedError(f"{type(self).__name__} must implement score or score_all.")
        return self.score_all(batch).gather(1, items - 1)  # column c is item c + 1

    def score_all(self, batch: Batch) -> Tensor:
        """Scores (B, I) of every item; column ``c`` is item id ``c + 1``."""
        if type(self).score is Recommender.score:
            raise NotImplementedError(f"{type(self).__name__} must implement score or score_all.")
        items = torch.arange(1, self.num_items + 1, device=batch.history.device)
        return self.score(batch, items.expand(len(batch), -1))  # (B, I)

    @property
    def trainable(self) -> bool:
        """Whether the shared training loop has anything to optimise."""
        return any(p.requires_grad for p in self.parameters())


def item_embedding(num_rows: int, d_model: int, init_std: float) -> nn.Embedding:
    """An item-id embedding table (num_rows, D), normal(0, init_std), row ``PAD_ID`` zero.

    ``padding_idx`` keeps the padding row at zero and out of every gradient update.
    """
    table = nn.Embedding(num_rows, d_model, padding_idx=PAD_ID)
    nn.init.normal_(table.weight, std=init_std)
    with torch.no_grad():
        table.weight[PAD_ID].zero_()
    return table
