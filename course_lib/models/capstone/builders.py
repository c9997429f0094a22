"""Build a capstone model for ShopWorld or MovieLens from one settings record."""

from __future__ import annotations

from dataclasses import dataclass

from ..multimodal.features import ItemFeatures
from ..multimodal.item_encoder import MODALITIES, ItemEncoder, ItemEncoderConfig
from .config import CapstoneConfig
from .metadata_encoder import MetadataEncoderConfig, MetadataFeatures, MetadataItemEncoder
from .model import CapstoneRecommender


@dataclass(frozen=True)
class CapstoneShape:
    """The model's sizes (what a student may turn at the top of notebook 13)."""

    max_len: int = 50  # L, history positions read
    d_model: int = 64  # D, item, hidden and interest vectors
    n_heads: int = 2  # H, heads in every attention
    n_layers: int = 1  # causal blocks over the history
    dropout: float = 0.2  # in the sequence model
    num_interests: int = 3  # K, learned interest queries (plus the current state)
    encoder_dropout: float = 0.1  # inside the image/text encoders (ShopWorld)
    patch_size: int = 8  # p, image patch side in pixels (ShopWorld: 24 / 8 = 3 x 3 patches)
    time_unit_seconds: float = 60.0  # width of the first time-gap bucket


def capstone_config(num_items: int, shape: CapstoneShape) -> CapstoneConfig:
    """The sequence model's :class:`CapstoneConfig` for a catalogue of ``num_items`` items."""
    return CapstoneConfig(
        num_items, max_len=shape.max_len, d_model=shape.d_model, n_heads=shape.n_heads, n_layers=shape.n_layers,
        dropout=shape.dropout, num_interests=shape.num_interests, time_unit_seconds=shape.time_unit_seconds,
    )


def shopworld_capstone(
    features: ItemFeatures, vocab_size: int, shape: CapstoneShape, *, modalities: tuple[str, ...] = MODALITIES,
    fusion: str = "gated",
) -> CapstoneRecommender:
    """A fresh capstone over ShopWorld's multimodal item encoder (ID, image, text, price; any subset)."""
    items = ItemEncoderConfig(
        features.num_items, vocab_size, modalities=tuple(modalities), fusion=fusion, d_model=shape.d_model,
        image_size=features.images.shape[-1], patch_size=shape.patch_size, n_heads=shape.n_heads,
        dropout=shape.encoder_dropout,
    )
    return CapstoneRecommender(capstone_config(features.num_items, shape), ItemEncoder(items, features))


def movielens_capstone(features: MetadataFeatures, shape: CapstoneShape, *, fusion: str = "gated") -> CapstoneRecommender:
    """A fresh capstone over the MovieLens item encoder (ID + text embedding + genres/year; gated or summed)."""
    items = MetadataEncoderConfig(
        features.num_items, text_dim=features.text.shape[1], num_genres=features.genres.shape[1], d_model=shape.d_model,
        fusion=fusion,
    )
    return CapstoneRecommender(capstone_config(features.num_items, shape), MetadataItemEncoder(items, features))
