"""The multimodal SASRec (notebook 12): SASRec over ShopWorld's fused ID, image, text and price vectors."""

from __future__ import annotations

from collections.abc import Sequence

from ...models.multimodal.fusion import FusionKind
from ...models.multimodal.item_encoder import MODALITIES, MultimodalEncoderConfig
from ...models.sasrec import SASRecConfig
from ...training import TrainConfig
from ..data import BenchData
from ..settings import Mode, Settings, Windows


def multimodal_settings(
    data: BenchData, mode: Mode, *, modalities: Sequence[str] = MODALITIES, fusion: FusionKind = "gated"
) -> Settings:
    """``"notebook"``: the small, fast setting of notebook 12's ablations; ``"full"``: longer training.

    Build it with :func:`course_lib.bench.recipes.sequential.build_sasrec` (the item encoder is
    part of the settings).
    """
    if data.world is None:
        raise ValueError(f"the multimodal model needs item images and texts: only 'shopworld' has them, got {data.name!r}.")
    num_items = data.split.num_items
    if mode == "full":
        max_len, d_model, patch_size = 50, 64, 6
        train = TrainConfig(epochs=60, lr=3e-3, batch_size=64, patience=5, max_seconds=540)
    else:
        max_len, d_model, patch_size = 30, 32, 8
        train = TrainConfig(epochs=4, lr=5e-3, batch_size=64, patience=4)
    model = SASRecConfig(num_items, max_len=max_len, d_model=d_model, n_heads=2, n_layers=1, dropout=0.2)
    items = MultimodalEncoderConfig(
        num_items, len(data.world.vocabulary), modalities=tuple(modalities), fusion=fusion, d_model=d_model,
        image_size=data.world.config.image_size, patch_size=patch_size, n_heads=2, dropout=0.1,
    )
    return Settings(model, train, Windows(max_len=max_len), items)
