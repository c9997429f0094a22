"""BERT4Rec (notebook 09): bidirectional blocks, cloze training with MASK_ID = I + 1."""

from __future__ import annotations

from ...models.bert4rec import BERT4Rec, BERT4RecConfig
from ...training import TrainConfig
from ..data import BenchData
from ..settings import Mode, Settings, Windows


def bert4rec_settings(data: BenchData, mode: Mode) -> Settings:
    """Chosen on validation NDCG@10 of ML-100K."""
    items = data.split.num_items
    if mode == "full":
        model = BERT4RecConfig(items, max_len=50, d_model=64, n_heads=2, n_layers=2, dropout=0.2, mask_prob=0.2)
        return Settings(model, TrainConfig(epochs=200, lr=3e-3, batch_size=64, patience=10, max_seconds=540), Windows(max_len=50))
    model = BERT4RecConfig(items, max_len=50, d_model=64, n_heads=2, n_layers=2, dropout=0.2, mask_prob=0.4)
    return Settings(model, TrainConfig(epochs=10, lr=5e-3, batch_size=64, patience=3), Windows(max_len=50))


def build_bert4rec(data: BenchData, settings: Settings) -> BERT4Rec:
    return BERT4Rec(settings.model)
