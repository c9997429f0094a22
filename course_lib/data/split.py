"""Implicit feedback, the temporal leave-one-out split, and padded history tensors.

Every interaction counts as a positive, implicit signal ("the user chose this item"); the
rating value is ignored. Each user's events are ordered by timestamp, ties broken by the
original file order (a stable sort): on MovieLens-100K 76% of interactions share their
timestamp with another event of the same user, so the tie rule decides what "last" means.

Temporal leave-one-out: per user, the last event is the test target, the second-last the
validation target, the rest is training. Validation input = the training events; test
input = training events + the validation item. Users with fewer than three events keep
all of them for training and are not evaluated.

Item ids are remapped to 1..I (``PAD_ID = 0`` is never an item); users to 0..U-1.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..constants import PAD_ID
from .batch import Batch

Align = Literal["left", "right"]
Stage = Literal["valid", "test"]


def timestamp_tie_fraction(interactions: pd.DataFrame, *, user: str = "user", time: str = "timestamp") -> float:
    """Fraction of interactions that share their timestamp with another event of the same user."""
    sizes = interactions.groupby([user, time])[time].transform("size")
    return float((sizes > 1).mean())


@dataclass(frozen=True, eq=False)  # holds arrays/tables: compare fields explicitly
class SequenceSplit:
    """Per-user time-ordered sequences and the temporal leave-one-out split.

    ``sequences[u]`` is user ``u``'s full ordered sequence; the properties cut it into
    training / validation / test.
    """

    sequences: tuple[np.ndarray, ...]  # per user index: item ids 1..I in time order (int64)
    times: tuple[np.ndarray, ...]  # per user index: unix seconds, same order (int64)
    rows: tuple[np.ndarray, ...]  # per user index: row of the source table behind each event
    user_ids: np.ndarray  # (U,) original user id of each user index
    item_ids: np.ndarray  # (I + 1,) original item id of each item id; entry PAD_ID is unused (-1)

    @property
    def num_users(self) -> int:
        """U, the number of users (indexed 0..U-1)."""
        return len(self.sequences)

    @property
    def num_items(self) -> int:
        """I, the catalogue size; items are 1..I and PAD_ID = 0 is not an item."""
        return len(self.item_ids) - 1

    @property
    def evaluable(self) -> np.ndarray:
        """(U,) bool: users with at least three events, who get a validation and a test target."""
        return np.array([len(s) >= 3 for s in self.sequences])

    def train_sequence(self, user: int) -> np.ndarray:
        """The training part of one user's sequence (all but the last two events)."""
        seq = self.sequences[user]
        return seq[:-2] if len(seq) >= 3 else seq

    def train_times(self, user: int) -> np.ndarray:
        times = self.times[user]
        return times[:-2] if len(times) >= 3 else times

    def stage_input(self, user: int, stage: Stage) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Input history, its times, the target and its time for ``stage`` ("valid"/"test")."""
        cut = {"valid": 2, "test": 1}[stage]
        seq, times = self.sequences[user], self.times[user]
        return seq[: len(seq) - cut], times[: len(seq) - cut], int(seq[-cut]), int(times[-cut])

    def train_item_counts(self) -> np.ndarray:
        """(I + 1,) number of training events per item id (entry PAD_ID is 0)."""
        counts = np.zeros(self.num_items + 1, dtype=np.int64)
        for user in range(self.num_users):
            np.add.at(counts, self.train_sequence(user), 1)
        return counts


def temporal_leave_one_out(
    interactions: pd.DataFrame,
    *,
    catalogue: Sequence[int] | np.ndarray | None = None,
    user: str = "user",
    item: str = "item",
    time: str = "timestamp",
) -> SequenceSplit:
    """Order each user's events in time (stable: file order breaks ties) and split them.

    Args:
        interactions: one row per event, in file order; columns ``user``, ``item``, ``time``.
            Every row counts as a positive interaction (implicit feedback).
        catalogue: original ids of every item to rank (default: the items that occur).
        user, item, time: column names.

    Returns:
        A :class:`SequenceSplit`.

    Raises:
        KeyError: a column is missing.
        ValueError: the table is empty, or a user, item or time is missing (NaN/None); a missing
            time would otherwise sort first and change which event is held out.
    """
    missing = {user, item, time} - set(interactions.columns)
    if missing:
        raise KeyError(f"interactions lacks column(s) {sorted(missing)}; it has {list(interactions.columns)}.")
    if len(interactions) == 0:
        raise ValueError("interactions is empty: a split needs at least one event.")
    for column in (user, item, time):
        gaps = interactions[column].isna().to_numpy()
        if gaps.any():
            raise ValueError(
                f"interactions[{column!r}] is missing (NaN/None) in {int(gaps.sum())} row(s), the first at row "
                f"{int(np.flatnonzero(gaps)[0])}; drop or fill those rows first (interactions.dropna())."
            )
    raw_items = interactions[item].to_numpy()
    known = np.unique(raw_items if catalogue is None else np.asarray(catalogue))
    if catalogue is not None and not np.isin(raw_items, known).all():
        raise ValueError("some interactions name items that are not in `catalogue`.")
    item_index = np.searchsorted(known, raw_items) + 1  # 1..I, PAD_ID = 0 free
    raw_users = interactions[user].to_numpy()
    user_ids, user_index = np.unique(raw_users, return_inverse=True)
    stamps = interactions[time].to_numpy().astype(np.int64)
    rows = np.arange(len(interactions))
    order = np.lexsort((rows, stamps, user_index))  # by user, then time, then file row
    bounds = np.flatnonzero(np.diff(user_index[order])) + 1
    groups = np.split(order, bounds)
    item_ids = np.concatenate([[-1], known])
    return SequenceSplit(
        sequences=tuple(item_index[g].astype(np.int64) for g in groups),
        times=tuple(stamps[g] for g in groups),
        rows=tuple(g.astype(np.int64) for g in groups),
        user_ids=user_ids,
        item_ids=item_ids,
    )


def pad_sequences(sequences: Sequence[np.ndarray], max_len: int, *, align: Align = "right", pad: int = PAD_ID) -> np.ndarray:
    """Stack the last ``max_len`` entries of each sequence into a padded (B, L) array.

    Args:
        sequences: B one-dimensional integer arrays (item ids, or timestamps).
        max_len: L; longer sequences keep their most recent ``max_len`` entries.
        align: ``"right"`` puts the newest entry at position L-1 with padding on the left
            (what causal models read); ``"left"`` starts at position 0, padding on the right.
        pad: the fill value (``PAD_ID`` for items, 0 for times).

    Returns:
        int64 array (B, L).
    """
    if align not in ("left", "right"):
        raise ValueError(f"align must be 'left' or 'right', got {align!r}.")
    if max_len < 0:
        raise ValueError(f"max_len must be >= 0, got {max_len}.")
    out = np.full((len(sequences), max_len), pad, dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq, dtype=np.int64)[len(seq) - min(len(seq), max_len):]
        if len(tail) == 0:
            continue
        if align == "right":
            out[row, max_len - len(tail):] = tail
        else:
            out[row, : len(tail)] = tail
    return out


def evaluation_batches(
    split: SequenceSplit,
    stage: Stage,
    *,
    max_len: int = 50,
    align: Align = "right",
    batch_size: int = 256,
    users: Sequence[int] | np.ndarray | None = None,
) -> list[Batch]:
    """Batches for validation (input = training events) or test (input = training + validation item).

    Args:
        split: the split.
        stage: ``"valid"`` or ``"test"``.
        max_len: L, the history length models see; ``seen`` keeps the full input history.
        align: where the padding goes (see :func:`pad_sequences`).
        batch_size: users per batch.
        users: which user indices (default: every evaluable user, in order).

    Returns:
        A list of CPU :class:`Batch` es with ``targets``, ``target_times`` and ``seen``.
    """
    chosen = np.flatnonzero(split.evaluable) if users is None else np.asarray(users, dtype=np.int64)
    if not split.evaluable[chosen].all():
        short = chosen[~split.evaluable[chosen]].tolist()
        raise ValueError(f"users {short[:5]} have fewer than 3 events, so no {stage} target; pick evaluable users.")
    batches = []
    for start in range(0, len(chosen), batch_size):
        part = chosen[start : start + batch_size]
        inputs = [split.stage_input(int(u), stage) for u in part]
        seqs = [x[0] for x in inputs]
        longest = max(len(s) for s in seqs)
        batches.append(
            Batch(
                users=torch.as_tensor(part, dtype=torch.long),
                history=torch.from_numpy(pad_sequences(seqs, max_len, align=align)),
                history_times=torch.from_numpy(pad_sequences([x[1] for x in inputs], max_len, align=align, pad=0)),
                targets=torch.tensor([x[2] for x in inputs], dtype=torch.long),
                target_times=torch.tensor([x[3] for x in inputs], dtype=torch.long),
                seen=torch.from_numpy(pad_sequences(seqs, longest, align="left")),
            )
        )
    return batches


@dataclass(frozen=True, eq=False)  # holds arrays/tables: compare fields explicitly
class TrainingExamples:
    """Training examples as stacked tensors; :meth:`batches` shuffles them with a generator.

    Either sequence windows (``seq_targets`` set: a prediction at every position) or
    (user, item) pairs (``targets`` set, empty history), see :func:`training_windows` and
    :func:`training_pairs`.
    """

    users: torch.Tensor  # (N,) long
    history: torch.Tensor  # (N, L) long, PAD_ID-padded
    history_times: torch.Tensor  # (N, L) long
    seq_targets: torch.Tensor | None = None  # (N, L) long, PAD_ID = no target at that position
    targets: torch.Tensor | None = None  # (N,) long

    def __len__(self) -> int:
        return self.users.shape[0]

    def batches(self, batch_size: int, generator: torch.Generator | None = None, *, shuffle: bool = True) -> Iterator[Batch]:
        """Yield CPU :class:`Batch` es of ``batch_size`` examples (the last may be smaller).

        Args:
            batch_size: examples per batch.
            generator: a CPU ``torch.Generator`` for the shuffle (explicit, so runs repeat).
            shuffle: shuffle the order each time this is called.
        """
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            yield Batch(
                users=self.users[index],
                history=self.history[index],
                history_times=self.history_times[index],
                seq_targets=None if self.seq_targets is None else self.seq_targets[index],
                targets=None if self.targets is None else self.targets[index],
            )


def training_windows(
    split: SequenceSplit,
    *,
    max_len: int,
    stride: int | None = None,
    align: Align = "right",
    include_first: bool = False,
) -> TrainingExamples:
    """Cut each user's training sequence into windows with a target at every position.

    For a training sequence s_1..s_n the inputs are s_1..s_{n-1} and the targets
    s_2..s_n (``seq_targets[l]`` follows ``history[l]``). Windows of ``max_len`` inputs
    end at the newest event and step back by ``stride`` (default ``max_len``: no overlap;
    ``stride=1`` gives one window per prefix). No validation or test item ever appears.

    Args:
        split: the split.
        max_len: L.
        stride: step between window ends (default L).
        align: padding side (see :func:`pad_sequences`).
        include_first: also predict s_1 from an empty history (a ``PAD_ID`` input), so
            every training event is a target once (useful for matrix factorization).

    Returns:
        :class:`TrainingExamples` with ``seq_targets``.
    """
    stride = max_len if stride is None else stride
    if stride < 1 or max_len < 1:
        raise ValueError(f"max_len and stride must be >= 1, got max_len={max_len}, stride={stride}.")
    users, inputs, input_times, targets = [], [], [], []
    for user in range(split.num_users):
        seq, times = split.train_sequence(user), split.train_times(user)
        if include_first:
            seq, times = np.concatenate([[PAD_ID], seq]), np.concatenate([[0], times])
        if len(seq) < 2:
            continue
        x, t, y = seq[:-1], times[:-1], seq[1:]
        end = len(x)
        while end > 0:
            begin = max(0, end - max_len)
            users.append(user)
            inputs.append(x[begin:end])
            input_times.append(t[begin:end])
            targets.append(y[begin:end])
            if begin == 0:
                break
            end -= stride
    return TrainingExamples(
        users=torch.tensor(users, dtype=torch.long),
        history=torch.from_numpy(pad_sequences(inputs, max_len, align=align)),
        history_times=torch.from_numpy(pad_sequences(input_times, max_len, align=align, pad=0)),
        seq_targets=torch.from_numpy(pad_sequences(targets, max_len, align=align)),
    )


def training_pairs(split: SequenceSplit) -> TrainingExamples:
    """Every training event as a (user, item) pair with an empty history (for MF, popularity)."""
    users = np.concatenate([np.full(len(split.train_sequence(u)), u) for u in range(split.num_users)])
    items = np.concatenate([split.train_sequence(u) for u in range(split.num_users)])
    n = len(users)
    return TrainingExamples(
        users=torch.from_numpy(users.astype(np.int64)),
        history=torch.zeros(n, 0, dtype=torch.long),
        history_times=torch.zeros(n, 0, dtype=torch.long),
        targets=torch.from_numpy(items.astype(np.int64)),
    )
