"""The one interface every recommender in the course implements, and what models share.

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

A model with attention also answers ``attention(batch, items=None) -> AttentionMaps``: the
one way to get attention weights out of any model (explanations, notebooks, the explorer).
Weights are returned, never stored on the module.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.batch import Batch


@dataclass(frozen=True)
class AttentionMaps:
    """The attention weights a model computed for one batch; ``None`` where it has no such map.

    Every map is 0 on padding. ``history`` is what an explanation reads: the weight of each
    history event behind a candidate's score.
    """

    history: Tensor | None = None  # (B, N, L) weight of each history event behind candidate n's score (N = 1: the same for all)
    layers: Tensor | None = None  # (B, n_layers, H, L', L') self-attention of every layer over the model's input sequence
    target: Tensor | None = None  # (B, H, N, L) DIN: each candidate's target attention over the history, per head
    interests: Tensor | None = None  # (B, K, L) weights of each interest over the history events (the capstone: K + 1, 0 = "now")
    candidate_interests: Tensor | None = None  # (B, N, K + 1) the capstone: how much candidate n reads each interest


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
        check_candidates(items, self.num_items, len(batch))
        return self.score_all(batch).gather(1, items - 1)  # column c is item c + 1

    def score_all(self, batch: Batch) -> Tensor:
        """Scores (B, I) of every item; column ``c`` is item id ``c + 1``."""
        if type(self).score is Recommender.score:
            raise NotImplementedError(f"{type(self).__name__} must implement score or score_all.")
        items = torch.arange(1, self.num_items + 1, device=batch.history.device)
        return self.score(batch, items.expand(len(batch), -1))  # (B, I)

    def attention(self, batch: Batch, items: Tensor | None = None) -> AttentionMaps:
        """The model's attention weights on ``batch`` (and candidates ``items`` (B, N), if they matter)."""
        raise NotImplementedError(f"{type(self).__name__} has no attention weights to show.")

    @property
    def history_lookup(self) -> nn.Module | None:
        """The module whose output is the vector of each history item (gradient x input hooks it), if any."""
        return None

    @property
    def trainable(self) -> bool:
        """Whether the shared training loop has anything to optimise."""
        return any(p.requires_grad for p in self.parameters())


class FeatureItemEncoder(nn.Module):
    """Shared by the item encoders that build every item's vector from its features (multimodal, metadata).

    A subclass has a ``config`` with ``num_items`` (I) and ``d_model`` (D), and implements
    ``encode(items (N,)) -> record`` whose ``.vectors`` (N, D) are the items' vectors (``PAD_ID`` -> 0);
    ``table()`` then encodes the whole catalogue (see :mod:`course_lib.models.item_encoders`).
    """

    @property
    def num_items(self) -> int:
        return self.config.num_items

    @property
    def d_model(self) -> int:
        return self.config.d_model

    def check_items(self, items: object) -> None:
        """Item ids for :meth:`encode`: a long (N,) tensor with ids in 0..I."""
        if not isinstance(items, Tensor) or items.ndim != 1 or items.dtype != torch.long:
            what = f"{tuple(items.shape)} {items.dtype}" if isinstance(items, Tensor) else type(items).__name__
            raise ValueError(f"encode expects item ids (N,) of dtype long, got {what}; table() gives every item's vector.")
        if items.numel() and (items.min() < 0 or items.max() > self.num_items):
            raise ValueError(f"item ids must lie in 0..{self.num_items}, got {int(items.min())}..{int(items.max())}.")

    def table(self) -> Tensor:
        """(I + 1, D) the vector of every item id 0..I (row ``PAD_ID`` zero), encoded in one pass."""
        device = next(self.parameters()).device
        return self.encode(torch.arange(self.num_items + 1, device=device)).vectors


def init_table(table: nn.Embedding, init_std: float) -> nn.Embedding:
    """Initialise an embedding table normal(0, init_std) and zero its padding row (if it has one)."""
    nn.init.normal_(table.weight, std=init_std)
    if table.padding_idx is not None:
        with torch.no_grad():
            table.weight[table.padding_idx].zero_()
    return table


def item_embedding(num_rows: int, d_model: int, init_std: float, *, padding_idx: int = PAD_ID) -> nn.Embedding:
    """An embedding table (num_rows, D), normal(0, init_std), row ``padding_idx`` zero.

    ``padding_idx`` keeps the padding row at zero and out of every gradient update.
    """
    return init_table(nn.Embedding(num_rows, d_model, padding_idx=padding_idx), init_std)


def check_candidates(items: object, num_items: int, batch_size: int | None = None) -> None:
    """Check candidate item ids at a model's boundary: a long (B, N) tensor of real items 1..I.

    ``PAD_ID`` and negative ids are refused: a candidate must be a real item (a negative id would
    otherwise index the item table from its end, and ``PAD_ID`` would get a score).
    """
    if not isinstance(items, Tensor) or items.ndim != 2 or items.dtype != torch.long:
        got = f"{tuple(items.shape)} {items.dtype}" if isinstance(items, Tensor) else type(items).__name__
        raise ValueError(f"items must be candidate item ids (B, N) of dtype long, got {got}.")
    if batch_size is not None and items.shape[0] != batch_size:
        raise ValueError(f"items must be (B, N) with one row per user of the batch (B = {batch_size}), got {items.shape[0]} rows.")
    if items.numel() and (int(items.min()) < 1 or int(items.max()) > num_items):
        raise ValueError(
            f"items must be item ids in 1..{num_items} (PAD_ID = {PAD_ID} is not an item), "
            f"got {int(items.min())}..{int(items.max())}."
        )


def check_fields(
    config: object, *, counts: tuple[str, ...] = (), sizes: tuple[str, ...] = (), rates: tuple[str, ...] = (),
    scales: tuple[str, ...] = (),
) -> None:
    """Validate a config's numbers in its ``__post_init__``, naming the config, the field and the value.

    Args:
        config: the dataclass instance.
        counts: fields that must be ints >= 0.
        sizes: fields that must be ints >= 1.
        rates: fields that must be probabilities in [0, 1) (dropout).
        scales: fields that must be finite numbers > 0 (initialisation scales).
    """
    where = type(config).__name__
    for names, low in ((counts, 0), (sizes, 1)):
        for name in names:
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{where}.{name} must be an int >= {low}, got {value!r}.")
    for name in rates:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
            raise ValueError(f"{where}.{name} is a probability in [0, 1), got {value!r}.")
    for name in scales:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < math.inf:
            raise ValueError(f"{where}.{name} must be a finite number > 0, got {value!r}.")


def check_right_aligned(history: Tensor, who: str) -> None:
    """Refuse histories whose newest slot (L-1) is padding although the row holds items.

    Models that read the state after slot L-1, or number positions from the newest slot, need
    right-aligned histories (``PAD_ID`` on the left); a left-aligned row would be scored from a
    padding slot without any error.
    """
    real = history != PAD_ID  # (B, L)
    if history.shape[1] and bool((real.any(dim=1) & ~real[:, -1]).any()):
        raise ValueError(
            f"{who} needs right-aligned histories (newest item at position L-1, padding on the left), but a row "
            "has padding at position L-1; build batches with align='right' (the default of evaluation_batches)."
        )


def check_targets(targets: Tensor, num_items: int, who: str) -> None:
    """Check the training targets a loss is about to use: at least one, every one an item 1..I."""
    if targets.numel() == 0:
        raise ValueError(
            f"{who}.loss: this batch has no targets (every target is PAD_ID), so there is nothing to learn from; "
            "build training data with training_windows(...) or training_pairs(...), which never make such a batch."
        )
    if int(targets.min()) < 1 or int(targets.max()) > num_items:
        raise ValueError(
            f"{who}.loss: targets must be item ids in 1..{num_items}, got {int(targets.min())}..{int(targets.max())}."
        )


def check_ids(ids: object, name: str = "history", *, max_len: int | None = None, num_ids: int | None = None) -> None:
    """Check item ids at a model's boundary: a long (B, L) tensor, L <= max_len, ids in 0..num_ids.

    Raises:
        ValueError: naming what was expected and what was given.
    """
    if not isinstance(ids, Tensor) or ids.ndim != 2 or ids.dtype != torch.long:
        got = f"{tuple(ids.shape)} {ids.dtype}" if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(f"{name} must be item ids (B, L) of dtype long, got {got}.")
    if max_len is not None and ids.shape[1] > max_len:
        raise ValueError(
            f"{name} has L = {ids.shape[1]} positions but the model has only max_len = {max_len} "
            "position vectors; cut it (evaluation_batches(..., max_len=...))."
        )
    if num_ids is not None and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) > num_ids):
        raise ValueError(f"{name} holds ids {int(ids.min())}..{int(ids.max())}, outside 0..{num_ids} (PAD_ID = 0).")
