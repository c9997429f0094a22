"""Cold start: hold a seeded fraction of the items out of training entirely.

Simulates items that arrive *after* the model was trained. Starting from the temporal
leave-one-out split (:mod:`course_lib.data.split`), :func:`hold_out_items` draws a fraction
of the catalogue (uniformly over item ids, seeded) and builds a training split in which

* every event on a held-out item is removed from every user's *training* events, so a
  held-out item is never a training input, never a training target;
* validation and test targets are kept as they are (a user whose training events all
  involve held-out items is dropped from training; such a user has no input left).

:func:`cold_start_batches` builds evaluation batches from the *original* split:

* the input history is the usual one (training events, plus the validation item for
  test) with held-out items removed, so no model ever reads a held-out item as input,
  not even at evaluation time; users left with an empty input are skipped;
* ``seen`` (what the evaluation excludes from the ranking) is the full, unfiltered input
  history, exactly as in the ordinary evaluation;
* ``targets`` picks the events whose target is held out (``"held_out"``), not held out
  (``"warm"``, e.g. validation for early stopping: no held-out item guides training), or all.

The model is not told about held-out items either way; a model whose training softmax
runs over the whole catalogue would still push them down as negatives. Use
:meth:`ColdStartSplit.training_catalogue` to leave them out of the training softmax (see
``SASRec(..., training_catalogue=...)`` in :mod:`course_lib.models.sasrec`), which is what "held out
entirely" means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..constants import PAD_ID
from .batch import Batch
from .split import SequenceSplit, Stage, pad_sequences

TargetKind = Literal["held_out", "warm", "all"]


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class ColdStartSplit:
    """A leave-one-out split with some items held out of training."""

    original: SequenceSplit  # the ordinary temporal leave-one-out split
    train: SequenceSplit  # the same, with every training event on a held-out item removed
    held_out: np.ndarray  # sorted item ids (1..I) never seen in training
    fraction: float  # the fraction of the catalogue that was held out
    seed: int  # seed of the draw

    @property
    def num_items(self) -> int:
        """I, the catalogue size (held-out items stay in the catalogue)."""
        return self.original.num_items

    @property
    def is_held_out(self) -> np.ndarray:
        """(I + 1,) bool indexed by item id, True for a held-out item (``PAD_ID`` False)."""
        flags = np.zeros(self.num_items + 1, dtype=bool)
        flags[self.held_out] = True
        return flags

    def training_catalogue(self) -> torch.Tensor:
        """(I,) bool, column c = item c + 1: True = the item may appear in training (not held out)."""
        return torch.from_numpy(~self.is_held_out[1:])


def hold_out_items(split: SequenceSplit, fraction: float, *, seed: int) -> ColdStartSplit:
    """Hold ``round(fraction * I)`` items, drawn uniformly (seeded), out of training.

    Args:
        split: a temporal leave-one-out split.
        fraction: share of the catalogue to hold out, in (0, 1).
        seed: seeds the NumPy generator of the draw.

    Returns:
        A :class:`ColdStartSplit`; ``train`` is a :class:`SequenceSplit` whose training
        events contain no held-out item, with every user's validation and test events kept.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    num_items = split.num_items
    count = max(1, round(fraction * num_items))
    rng = np.random.default_rng(seed)
    held_out = np.sort(rng.choice(np.arange(1, num_items + 1), size=count, replace=False)).astype(np.int64)
    held = np.zeros(num_items + 1, dtype=bool)
    held[held_out] = True
    sequences, times, rows = [], [], []
    for user in range(split.num_users):
        seq, stamp, row = split.sequences[user], split.times[user], split.rows[user]
        if len(seq) >= 3:
            keep = ~held[seq[:-2]]
            if not keep.any():  # nothing left to learn from: drop the user from training entirely
                keep_all = np.zeros(len(seq), dtype=bool)
            else:
                keep_all = np.concatenate([keep, [True, True]])  # validation and test events stay
        else:
            keep_all = ~held[seq]  # users too short to evaluate: every event is training
        sequences.append(seq[keep_all])
        times.append(stamp[keep_all])
        rows.append(row[keep_all])
    train = SequenceSplit(tuple(sequences), tuple(times), tuple(rows), split.user_ids, split.item_ids)
    return ColdStartSplit(split, train, held_out, fraction, seed)


def cold_start_batches(
    cold: ColdStartSplit,
    stage: Stage,
    *,
    targets: TargetKind,
    max_len: int = 50,
    batch_size: int = 256,
) -> list[Batch]:
    """Evaluation batches of the original split with held-out items removed from the input.

    Args:
        cold: the cold-start split.
        stage: ``"valid"`` or ``"test"``.
        targets: which events to keep: ``"held_out"`` (target is a held-out item),
            ``"warm"`` (target is not), or ``"all"``.
        max_len: L of ``history``.
        batch_size: users per batch.

    Returns:
        CPU :class:`Batch` es (right-aligned history with no held-out item; ``seen`` = the
        full unfiltered input history, excluded from the ranking as usual).
    """
    if targets not in ("held_out", "warm", "all"):
        raise ValueError(f"targets must be 'held_out', 'warm' or 'all', got {targets!r}.")
    held = cold.is_held_out
    chosen = []
    for user in np.flatnonzero(cold.original.evaluable):
        history, history_times, target, target_time = cold.original.stage_input(int(user), stage)
        keep = ~held[history]
        if not keep.any():
            continue  # no input left to condition on
        if (targets == "held_out" and not held[target]) or (targets == "warm" and held[target]):
            continue
        chosen.append((int(user), history[keep], history_times[keep], target, target_time, history))
    batches = []
    for start in range(0, len(chosen), batch_size):
        part = chosen[start : start + batch_size]
        longest = max(len(c[5]) for c in part)
        batches.append(
            Batch(
                users=torch.tensor([c[0] for c in part], dtype=torch.long),
                history=torch.from_numpy(pad_sequences([c[1] for c in part], max_len)),
                history_times=torch.from_numpy(pad_sequences([c[2] for c in part], max_len, pad=0)),
                targets=torch.tensor([c[3] for c in part], dtype=torch.long),
                target_times=torch.tensor([c[4] for c in part], dtype=torch.long),
                seen=torch.from_numpy(pad_sequences([c[5] for c in part], longest, align="left")),
            )
        )
    return batches


def chance_metrics(
    batches: Iterable[Batch], num_items: int, *, candidates: Sequence[int] | np.ndarray | None = None, k: int = 10,
    repeats: str = "drop",
) -> dict[str, float]:
    """Expected HR@K and NDCG@K of a uniformly random ranking, under the course's evaluation.

    For a user whose target is ranked among n items (every candidate not in ``seen``, the
    target included), a random order puts it at each rank 1..n with probability 1/n:

        E[HR@K] = min(K, n) / n,      E[NDCG@K] = (1/n) * sum_{r <= min(K, n)} 1 / log2(r + 1)

    Args:
        batches: evaluation batches (``targets`` and ``seen``).
        num_items: I.
        candidates: item ids ranked (default: the whole catalogue 1..I).
        k: the cut-off K.
        repeats: the rule of :func:`course_lib.metrics.evaluate` for a user whose target is a seen item:
            ``"drop"`` leaves that user out, ``"rank_seen"`` removes no seen item for anyone.

    Returns:
        ``{"HR@K": ..., "NDCG@K": ...}`` averaged over users.
    """
    if repeats not in ("drop", "rank_seen"):
        raise ValueError(f"repeats must be 'drop' or 'rank_seen', got {repeats!r}.")
    pool = np.zeros(num_items + 1, dtype=bool)
    pool[1:] = True if candidates is None else False
    if candidates is not None:
        pool[np.asarray(candidates, dtype=np.int64)] = True
    gains = np.cumsum([0.0] + [1.0 / math.log2(r + 1) for r in range(1, k + 1)])  # gains[m] = sum_{r<=m}
    hits, ndcgs = [], []
    for batch in batches:
        for seen, target in zip(batch.excluded.numpy(), batch.targets.numpy()):
            if repeats == "drop" and target in seen:
                continue  # left out, as evaluate(..., repeats="drop") does
            ranked = pool.copy()
            if repeats != "rank_seen":
                ranked[seen] = False
            ranked[PAD_ID] = False
            ranked[target] = True
            n = int(ranked.sum())
            hits.append(min(k, n) / n)
            ndcgs.append(gains[min(k, n)] / n)
    if not hits:
        raise ValueError("every user's target is a seen item, and repeats='drop' leaves them all out.")
    return {f"HR@{k}": float(np.mean(hits)), f"NDCG@{k}": float(np.mean(ndcgs))}
