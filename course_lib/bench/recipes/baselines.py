"""Popularity (counted, not trained) and matrix factorization (notebook 06)."""

from __future__ import annotations

from ...models.mf import MatrixFactorization, MFConfig
from ...models.popularity import Popularity
from ...training import TrainConfig
from ..data import BenchData
from ..settings import Mode, Settings


def popularity_settings(data: BenchData, mode: Mode) -> Settings:
    """Nothing to choose: training counts."""
    return Settings(model=None, train=None)


def build_popularity(data: BenchData, settings: Settings) -> Popularity:
    return Popularity.from_split(data.split)


def mf_settings(data: BenchData, mode: Mode) -> Settings:
    """MF on (user, item) pairs; chosen on validation NDCG@10 of ML-100K."""
    model = MFConfig(data.split.num_users, data.split.num_items, d_model=64)
    if mode == "full":
        return Settings(model, TrainConfig(epochs=100, lr=1e-2, weight_decay=1e-5, batch_size=1024, patience=6))
    return Settings(model, TrainConfig(epochs=30, lr=1e-2, weight_decay=1e-5, batch_size=1024, patience=3))


def build_mf(data: BenchData, settings: Settings) -> MatrixFactorization:
    return MatrixFactorization(settings.model)
