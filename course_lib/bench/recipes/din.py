"""DIN and its twins (notebook 07): target attention, mean pooling, + recency (both), unnormalised weights."""

from __future__ import annotations

from ...models.din import DIN, DINConfig, Objective, Pooling, Weights
from ...training import TrainConfig
from ..data import BenchData
from ..settings import Mode, Settings, Windows


def din_settings(
    data: BenchData, mode: Mode, *, pooling: Pooling = "attention", recency: bool = False, objective: Objective = "bce",
    weights: Weights = "softmax",
) -> Settings:
    """Every DIN variant trains the same way; chosen on validation NDCG@10 of ML-100K."""
    model = DINConfig(data.split.num_items, d_model=64, num_negatives=64, max_len=50, pooling=pooling, recency=recency,
                      objective=objective, weights=weights)
    if mode == "full":
        return Settings(model, TrainConfig(epochs=60, lr=5e-3, batch_size=64, patience=8), Windows(max_len=50))
    return Settings(model, TrainConfig(epochs=6, lr=1e-2, batch_size=64, patience=4), Windows(max_len=50))


def build_din(data: BenchData, settings: Settings) -> DIN:
    return DIN(settings.model)
