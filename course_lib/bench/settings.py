"""One settings record for every benchmark entry: what to build, how to train it, on which examples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..models.item_encoders import ItemEncoderConfig
from ..training import TrainConfig

Mode = Literal["notebook", "full"]  # "notebook": what the notebooks train; "full": the converged settings


@dataclass(frozen=True)
class Windows:
    max_len: int  # L, history positions of every training window (and of the evaluation batches)
    stride: int | None = None  # step between the ends of overlapping windows (None = L: no overlap, 1 = every prefix)

    def __post_init__(self) -> None:
        if self.max_len < 1 or (self.stride is not None and self.stride < 1):
            raise ValueError(f"max_len and stride must be >= 1, got max_len={self.max_len}, stride={self.stride}.")


@dataclass(frozen=True)
class Settings:
    """How one model is built and trained in one benchmark mode."""

    model: Any  # the model's config (SASRecConfig, DINConfig, CapstoneConfig, ...); None for popularity
    train: TrainConfig | None  # the shared loop's settings (epochs, learning rate, warm-up, schedule); None = nothing to train
    windows: Windows | None = None  # training windows with a target at every position; None = (user, item) pairs
    items: ItemEncoderConfig | None = None  # the item encoder's config, for models that read item features

    def __post_init__(self) -> None:
        reach = getattr(self.model, "max_len", None)
        if self.windows is not None and reach is not None and reach < self.windows.max_len:
            raise ValueError(
                f"the model reads at most max_len = {reach} positions but the windows have L = {self.windows.max_len}."
            )
        for name in ("num_items", "d_model"):
            a, b = getattr(self.model, name, None), getattr(self.items, name, None)
            if a is not None and b is not None and a != b:
                raise ValueError(f"the model and its item encoder disagree on {name}: {a} and {b}.")
