"""What a model may know about an item besides its id, as tensors indexed by item id.

Two records, one per kind of item encoder (row ``item_id`` describes that item; row
``PAD_ID`` is a blank item):

* :class:`MultimodalFeatures` - a picture, a tokenised text and a price bucket per item
  (ShopWorld, :func:`course_lib.data.shopworld.shopworld_features`);
* :class:`MetadataFeatures` - a frozen text embedding, genre flags and a release-year bucket
  per item (MovieLens, :func:`course_lib.data.movielens.movielens_features`).

They are data, not weights: a model holds them as non-persistent buffers and they are given
again when a saved model is loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch
from torch import Tensor

YEAR_EDGES: tuple[int, ...] = (1950, 1960, 1970, 1980, 1990, 1993, 1994, 1995, 1996, 1997, 1998)
"""Release-year bucket b >= 1 holds years in [edge_{b-1}, edge_b); bucket 0 = unknown year."""
NUM_YEAR_BUCKETS = len(YEAR_EDGES) + 2  # bucket ids 0..len(YEAR_EDGES) + 1


def images_to_tensor(images: np.ndarray | Tensor) -> Tensor:
    """Stored images (N, S, S, 3) uint8 -> (N, 3, S, S) float32 in [0, 1], channels first."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (N, S, S, 3) (channels last, as ShopWorld stores them), got {tuple(x.shape)}.")
    return x.permute(0, 3, 1, 2).float() / 255.0  # (N, 3, S, S)


def year_buckets(years: np.ndarray | list) -> np.ndarray:
    """Bucket ids of release years: 0 = unknown (NaN / None), 1.. by :data:`YEAR_EDGES`.

    Args:
        years: (N,) years, NaN or None where unknown.

    Returns:
        (N,) int64 bucket ids in 0..len(YEAR_EDGES) + 1.
    """
    values = np.array([np.nan if pd.isna(y) else float(y) for y in years], dtype=np.float64)
    buckets = 1 + np.searchsorted(np.asarray(YEAR_EDGES), values, side="right")
    return np.where(np.isnan(values), 0, buckets).astype(np.int64)


def _rows(name: str, value: Tensor, rows: int) -> None:
    if not isinstance(value, Tensor) or value.shape[:1] != (rows,):
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"every feature needs one row per item id (I + 1 = {rows}); {name} has shape {got}.")


@dataclass(frozen=True, eq=False)  # holds tensors: compare fields explicitly
class MultimodalFeatures:
    """Every modality of every item; row ``item_id`` describes that item, row ``PAD_ID`` is blank."""

    images: Tensor  # (I + 1, 3, S, S) float in [0, 1]
    text_tokens: Tensor  # (I + 1, T) long token ids, TEXT_PAD-padded
    price_buckets: Tensor  # (I + 1,) long, 0..num_price_buckets - 1

    def __post_init__(self) -> None:
        rows = self.images.shape[0]
        if self.images.ndim != 4:
            raise ValueError(f"images must be (I + 1, 3, S, S), got {tuple(self.images.shape)}.")
        _rows("text_tokens", self.text_tokens, rows)
        _rows("price_buckets", self.price_buckets, rows)
        if self.price_buckets.ndim != 1 or self.text_tokens.ndim != 2:
            raise ValueError(
                f"text_tokens must be (I + 1, T) and price_buckets (I + 1,), got {tuple(self.text_tokens.shape)} "
                f"and {tuple(self.price_buckets.shape)}."
            )

    @property
    def num_items(self) -> int:
        """I (rows are item ids 0..I, row PAD_ID blank)."""
        return self.images.shape[0] - 1


@dataclass(frozen=True, eq=False)  # holds tensors: compare fields explicitly
class MetadataFeatures:
    """Every item's text embedding and metadata; row ``item_id`` describes that item, row ``PAD_ID`` is blank."""

    text: Tensor  # (I + 1, Dt) float, frozen text embeddings
    genres: Tensor  # (I + 1, G) float 0/1, genre multi-hot
    year_buckets: Tensor  # (I + 1,) long, release-year bucket (0 = unknown)

    def __post_init__(self) -> None:
        rows = self.text.shape[0]
        if self.text.ndim != 2 or self.genres.ndim != 2 or self.year_buckets.ndim != 1:
            raise ValueError(
                f"expected text (I + 1, Dt), genres (I + 1, G) and year_buckets (I + 1,), got {tuple(self.text.shape)}, "
                f"{tuple(self.genres.shape)} and {tuple(self.year_buckets.shape)}."
            )
        _rows("genres", self.genres, rows)
        _rows("year_buckets", self.year_buckets, rows)

    @property
    def num_items(self) -> int:
        """I (rows are item ids 0..I, row PAD_ID blank)."""
        return self.text.shape[0] - 1


def features_fingerprint(features: MultimodalFeatures | MetadataFeatures) -> str:
    """A short hash that tells one set of item features from another (saved with a model).

    It covers every field's shape and the bytes of every exact field: token ids, buckets, genre
    flags, and images as 0..255 bytes. Float embeddings (``MetadataFeatures.text``) count by
    shape only: they can differ in the last bits between machines while meaning the same.
    """
    digest = hashlib.sha256()
    for field in fields(features):
        value = getattr(features, field.name).detach().cpu()
        digest.update(f"{field.name}{tuple(value.shape)}".encode())
        if field.name == "images":
            digest.update((value * 255).round().to(torch.uint8).contiguous().numpy().tobytes())
        elif not value.is_floating_point() or field.name == "genres":
            digest.update(value.to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def content_vectors(features: MultimodalFeatures, vocabulary_size: int, *, image_cells: int = 4) -> Tensor:
    """One frozen content vector per item from its text, picture and price (ShopWorld's semantic-ID input).

    Three parts, each scaled to unit length so that none dominates by size, then concatenated:
    the text as a bag of words (counts of each token id, padding left out), the picture
    average-pooled to ``image_cells`` x ``image_cells`` cells per colour channel (colour and a
    coarse shape) and centred on the catalogue's mean picture, and the price bucket one-hot.

    Args:
        features: the items' :class:`MultimodalFeatures` (row ``PAD_ID`` blank).
        vocabulary_size: number of text token ids (``len(world.vocabulary)``).
        image_cells: cells per side of the pooled picture.

    Returns:
        (I, V + 3 * cells^2 + P) float; row c is item id c + 1.
    """
    if not isinstance(features, MultimodalFeatures):
        raise TypeError(f"content_vectors needs MultimodalFeatures (e.g. shopworld_features(world)), got {type(features).__name__}.")
    tokens = features.text_tokens[1:]  # (I, T)
    words = torch.zeros(tokens.shape[0], vocabulary_size).scatter_add_(1, tokens, torch.ones_like(tokens, dtype=torch.float))
    words[:, 0] = 0.0  # TEXT_PAD is no word
    pictures = torch.nn.functional.adaptive_avg_pool2d(features.images[1:], image_cells).flatten(1)  # (I, 3 * cells^2)
    pictures = pictures - pictures.mean(dim=0, keepdim=True)
    price = torch.nn.functional.one_hot(features.price_buckets[1:], int(features.price_buckets.max()) + 1).float()
    parts = [torch.nn.functional.normalize(p, dim=1) for p in (words, pictures, price)]
    return torch.cat(parts, dim=1)
