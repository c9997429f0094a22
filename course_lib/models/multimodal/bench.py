"""Train the multimodal SASRec on ShopWorld with the benchmark's shared loop.

``train_multimodal`` has the benchmark's signature ``(data, mode, seed, device) -> BenchRun``
(with keyword options for the ablations), so it can be registered in
:data:`course_lib.bench.MODELS` and is what notebook 12's ablation grid calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ...training import TrainConfig
from ..sasrec import SASRecConfig
from .features import ItemFeatures, shopworld_features
from .fusion import FusionKind
from .item_encoder import MODALITIES, ItemEncoderConfig
from .sasrec import MultimodalSASRec, MultimodalSASRecConfig

if TYPE_CHECKING:  # course_lib.bench imports the models, so only for type checkers
    from ...bench import BenchData, BenchRun
    from ...data.shopworld import ShopWorld


@dataclass(frozen=True)
class MultimodalSettings:
    """How the multimodal SASRec is built and trained in one benchmark mode."""

    max_len: int  # L, history positions read (training windows and evaluation)
    d_model: int  # D, item and hidden vectors
    n_heads: int  # H, in every attention
    n_layers: int  # causal blocks over the history (the item encoders use 1 each)
    dropout: float  # in the sequence model
    encoder_dropout: float  # in the image/text encoders
    patch_size: int  # p, side of an image patch in pixels (24 / 8 = a 3 x 3 grid of patches)
    config: TrainConfig  # the shared loop's settings


def multimodal_settings(mode: str) -> MultimodalSettings:
    """``"notebook"``: the small, fast setting of notebook 12's ablations; ``"full"``: longer training."""
    if mode == "full":
        return MultimodalSettings(
            max_len=50, d_model=64, n_heads=2, n_layers=1, dropout=0.2, encoder_dropout=0.1, patch_size=6,
            config=TrainConfig(epochs=60, lr=3e-3, batch_size=64, patience=5, max_seconds=540),
        )
    return MultimodalSettings(
        max_len=30, d_model=32, n_heads=2, n_layers=1, dropout=0.2, encoder_dropout=0.1, patch_size=8,
        config=TrainConfig(epochs=4, lr=5e-3, batch_size=64, patience=4),
    )


def build_multimodal_sasrec(
    features: ItemFeatures,
    vocab_size: int,
    settings: MultimodalSettings,
    *,
    modalities: Sequence[str] = MODALITIES,
    fusion: FusionKind = "concat",
) -> MultimodalSASRec:
    """A fresh :class:`MultimodalSASRec` sized by ``settings`` (seed first for repeatable weights)."""
    sasrec = SASRecConfig(
        features.num_items, max_len=settings.max_len, d_model=settings.d_model, n_heads=settings.n_heads,
        n_layers=settings.n_layers, dropout=settings.dropout,
    )
    items = ItemEncoderConfig(
        features.num_items, vocab_size, modalities=tuple(modalities), fusion=fusion, d_model=settings.d_model,
        image_size=features.images.shape[-1], patch_size=settings.patch_size, n_heads=settings.n_heads, dropout=settings.encoder_dropout,
    )
    return MultimodalSASRec(MultimodalSASRecConfig(sasrec, items), features)


def train_multimodal(
    data: BenchData,
    mode: str,
    seed: int,
    device: torch.device,
    *,
    modalities: Sequence[str] = MODALITIES,
    fusion: FusionKind = "gated",
    world: ShopWorld | None = None,
    settings: MultimodalSettings | None = None,
) -> BenchRun:
    """Train a multimodal SASRec on ShopWorld; the benchmark's ``(data, mode, seed, device) -> BenchRun``.

    Args:
        data: a ``BenchData`` of ShopWorld (``course_lib.bench.load_dataset("shopworld")``).
        mode: ``"notebook"`` or ``"full"`` (see :func:`multimodal_settings`).
        seed: seeds the weights and the training loop.
        device: where to train.
        modalities: any non-empty subset of ``MODALITIES``.
        fusion: ``"concat"``, ``"gated"`` or ``"cross"``.
        world: the generated ShopWorld (default: generated here with the standard config).
        settings: override the mode's settings.

    Returns:
        A ``BenchRun`` whose model holds its best-validation weights.
    """
    from ...bench import fit_on_windows  # imported here: course_lib.bench imports the models
    from ...data.shopworld import generate_shopworld
    from ...seeding import set_seed

    if data.name != "shopworld":
        raise ValueError(f"the multimodal model needs item images and texts: only 'shopworld' has them, got {data.name!r}.")
    world = world if world is not None else generate_shopworld()
    if not np.array_equal(data.split.item_ids[1:], world.items.index.to_numpy()):
        raise ValueError("the split's item ids do not match the ShopWorld items; split with catalogue=world.items.index.")
    settings = settings or multimodal_settings(mode)
    set_seed(seed)
    model = build_multimodal_sasrec(
        shopworld_features(world), len(world.vocabulary), settings, modalities=modalities, fusion=fusion
    )
    return fit_on_windows(model, data, settings.config, seed, device, max_len=settings.max_len)
