"""Small data the unit tests share: random and walk-shaped splits, and batches from history tensors."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from course_lib.data import Batch, SequenceSplit, temporal_leave_one_out


def split_of(rows: Iterable[tuple[int, int, int]], *, catalogue: np.ndarray | None = None) -> SequenceSplit:
    """The temporal leave-one-out split of ``(user, item, timestamp)`` rows."""
    frame = pd.DataFrame(list(rows), columns=["user", "item", "timestamp"])
    return temporal_leave_one_out(frame, catalogue=catalogue)


def random_split(
    seed: int = 0, *, users: int = 30, items: int = 25, events: tuple[int, int] = (5, 15), repeats: bool = False
) -> SequenceSplit:
    """Each user draws between ``events[0]`` and ``events[1] - 1`` random items, one per time step.

    Args:
        seed: seeds numpy's generator.
        users: U.
        items: I (the catalogue is 1..I even when some item is never drawn).
        events: the range of sequence lengths (users with fewer than 3 events are not evaluated).
        repeats: draw items with replacement (a user may return to an item).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        n = int(rng.integers(*events))
        if repeats:
            chosen = rng.integers(1, items + 1, size=n)
        else:
            chosen = rng.choice(np.arange(1, items + 1), size=n, replace=False)
        rows += [(user, int(item), step) for step, item in enumerate(chosen)]
    return split_of(rows, catalogue=np.arange(1, items + 1))


def walk_split(*, users: int = 30, items: int = 20, events: int = 15) -> SequenceSplit:
    """User u walks around a circle of items: u+1, u+2, ... (a sequence any sequential model can learn)."""
    return split_of((user, (user + t) % items + 1, t) for user in range(users) for t in range(events))


def history_batch(history: torch.Tensor, times: torch.Tensor | None = None, **fields: torch.Tensor) -> Batch:
    """A :class:`Batch` of histories (B, L) for users 0..B-1 (times default to zeros), plus any other fields."""
    times = torch.zeros_like(history) if times is None else times
    return Batch(users=torch.arange(len(history)), history=history, history_times=times, **fields)
