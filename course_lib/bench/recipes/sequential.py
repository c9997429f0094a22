"""The sequential models of notebooks 08-11: SASRec (with IDs, time gaps or text) and the GRU baseline."""

from __future__ import annotations

import dataclasses

from ...data.time_buckets import TimeBucketConfig
from ...models.gru import GRURec, GRURecConfig
from ...models.item_encoders import TextItemEncoderConfig, make_item_encoder
from ...models.sasrec import SASRec, SASRecConfig
from ...text_encoder import EMBEDDING_DIM
from ...training import TrainConfig
from ..data import BenchData
from ..settings import Mode, Settings, Windows


def sasrec_settings(data: BenchData, mode: Mode, *, time_gaps: TimeBucketConfig | None = None) -> Settings:
    """SASRec's settings, chosen on validation NDCG@10 of ML-100K.

    ``"notebook"`` is exactly what notebook 08 trains (its knobs at the top): a fixed 12 epochs,
    what 40 s bought on an idle 2-core CPU, so the result does not depend on how busy the machine
    is. ``"full"`` is the converged configuration: a warm-up + cosine schedule over 30 epochs.
    """
    model = SASRecConfig(data.split.num_items, max_len=50, d_model=64, n_heads=2, n_layers=1, dropout=0.2, time_gaps=time_gaps)
    if mode == "full":
        train = TrainConfig(epochs=30, lr=3e-3, batch_size=64, patience=100, warmup_epochs=1, schedule="cosine")
    else:
        train = TrainConfig(epochs=12, lr=3e-3, batch_size=64, patience=3)
    return Settings(model, train, Windows(max_len=50, stride=50))


def time_aware_sasrec_settings(data: BenchData, mode: Mode) -> Settings:
    """SASRec's settings plus a learned vector per bucket of the gap since the previous event (notebook 10)."""
    return sasrec_settings(data, mode, time_gaps=TimeBucketConfig())


def text_sasrec_settings(data: BenchData, mode: Mode, *, with_id: bool) -> Settings:
    """SASRec's settings with item vectors from all-MiniLM-L6-v2 title embeddings (``with_id``: plus an ID vector)."""
    settings = sasrec_settings(data, mode)
    items = TextItemEncoderConfig(data.split.num_items, text_dim=EMBEDDING_DIM, d_model=settings.model.d_model, with_id=with_id)
    return dataclasses.replace(settings, items=items)


def build_sasrec(data: BenchData, settings: Settings) -> SASRec:
    """SASRec over an ID table, or over the item encoder ``settings.items`` describes (text, multimodal)."""
    if settings.items is None:
        return SASRec(settings.model)
    return SASRec(settings.model, make_item_encoder(settings.items, data.features_for(settings.items)))


def gru_settings(data: BenchData, mode: Mode) -> Settings:
    """The GRU baseline: the same windows, loss and schedule as SASRec's.

    ``"notebook"`` is what notebook 08 trains (5 epochs, to keep the notebook fast).
    """
    model = GRURecConfig(data.split.num_items, d_model=64, n_layers=1, dropout=0.2)
    if mode == "full":
        train = TrainConfig(epochs=30, lr=3e-3, batch_size=64, patience=100, max_seconds=540, warmup_epochs=1, schedule="cosine")
    else:
        train = TrainConfig(epochs=5, lr=3e-3, batch_size=64, patience=3)
    return Settings(model, train, Windows(max_len=50, stride=50))


def build_gru(data: BenchData, settings: Settings) -> GRURec:
    return GRURec(settings.model)
