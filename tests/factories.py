"""Small data and models the unit tests share: random and walk-shaped splits, batches from history tensors, tiny models."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from course_lib import PAD_ID
from course_lib.data import Batch, SequenceSplit, temporal_leave_one_out
from course_lib.data.item_features import MetadataFeatures
from course_lib.data.time_buckets import TimeBucketConfig
from course_lib.models import (
    DIN,
    BERT4Rec,
    BERT4RecConfig,
    CapstoneConfig,
    CapstoneRecommender,
    DINConfig,
    MetadataEncoderConfig,
    MetadataItemEncoder,
    MultiInterest,
    MultiInterestConfig,
    Recommender,
    SASRec,
    SASRecConfig,
    TextItemEncoder,
    TextItemEncoderConfig,
)


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


TINY_I, TINY_L, TINY_D = 20, 8, 8  # catalogue size, history length and vector size of tiny_model


def tiny_metadata() -> MetadataFeatures:
    """Random metadata features (text, genres, year buckets) of TINY_I items."""
    g = torch.Generator().manual_seed(0)
    text, genres = torch.randn(TINY_I + 1, 6, generator=g), (torch.rand(TINY_I + 1, 19, generator=g) < 0.3).float()
    text[PAD_ID], genres[PAD_ID] = 0, 0
    return MetadataFeatures(text=text, genres=genres, year_buckets=torch.randint(0, 13, (TINY_I + 1,), generator=g))


def tiny_model(name: str) -> Recommender:
    """A small untrained model in eval mode: SASRec (+time, +text), BERT4Rec, DIN, MultiInterest or Capstone."""
    torch.manual_seed(0)
    items, length, d = TINY_I, TINY_L, TINY_D
    sasrec = SASRecConfig(items, max_len=length, d_model=d, n_heads=2, n_layers=2)
    text = TextItemEncoderConfig(items, text_dim=6, d_model=d, with_id=True)
    capstone = CapstoneConfig(items, max_len=length, d_model=d, n_heads=2, num_interests=2)
    return {
        "SASRec": lambda: SASRec(sasrec),
        "SASRec+time": lambda: SASRec(dataclasses.replace(sasrec, time_gaps=TimeBucketConfig())),
        "SASRec+text": lambda: SASRec(sasrec, TextItemEncoder(text, torch.randn(items, 6))),
        "BERT4Rec": lambda: BERT4Rec(BERT4RecConfig(items, max_len=length, d_model=d, n_heads=2, n_layers=2)),
        "DIN": lambda: DIN(DINConfig(items, d_model=d, n_heads=2)),
        "MultiInterest": lambda: MultiInterest(MultiInterestConfig(items, num_interests=3, d_model=d)),
        "Capstone": lambda: CapstoneRecommender(
            capstone, MetadataItemEncoder(MetadataEncoderConfig(items, text_dim=6, d_model=d), tiny_metadata())
        ),
    }[name]().eval()


class CountingEncoder:
    """A stand-in text encoder: unit-length 3-d vectors from the text length, counting its calls."""

    name = "fake-encoder"
    dim = 3

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, *, batch_size=64, device="cpu") -> torch.Tensor:
        self.calls += 1
        rows = torch.tensor([[len(t), 1.0, float(i)] for i, t in enumerate(texts)])
        return rows / rows.norm(dim=1, keepdim=True)  # unit length, like the real encoder
