"""Item features as tensors, indexed by item id (row ``PAD_ID`` is a blank item)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ...constants import PAD_ID


def images_to_tensor(images: np.ndarray | Tensor) -> Tensor:
    """Stored images (N, S, S, 3) uint8 -> (N, 3, S, S) float32 in [0, 1], channels first."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (N, S, S, 3) (channels last, as ShopWorld stores them), got {tuple(x.shape)}.")
    return x.permute(0, 3, 1, 2).float() / 255.0  # (N, 3, S, S)


@dataclass(frozen=True)
class ItemFeatures:
    """Every modality of every item; row ``item_id`` describes that item, row ``PAD_ID`` is blank."""

    images: Tensor  # (I + 1, 3, S, S) float in [0, 1]
    text_tokens: Tensor  # (I + 1, T) long token ids, TEXT_PAD-padded
    price_buckets: Tensor  # (I + 1,) long, 0..num_price_buckets - 1

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.text_tokens.shape[0] != n or self.price_buckets.shape != (n,):
            raise ValueError(
                f"every feature needs one row per item id (I + 1 = {n}); got text {tuple(self.text_tokens.shape)}, "
                f"price {tuple(self.price_buckets.shape)}."
            )

    @property
    def num_items(self) -> int:
        """I (rows are item ids 0..I, row PAD_ID blank)."""
        return self.images.shape[0] - 1


def shopworld_features(world) -> ItemFeatures:
    """The features of a :class:`~course_lib.data.shopworld.ShopWorld`, indexed by item id.

    ShopWorld's item ids are 1..I and equal the course ids of
    ``temporal_leave_one_out(world.interactions, catalogue=world.items.index)``.
    """
    price = np.zeros(world.num_items + 1, dtype=np.int64)
    price[world.items.index.to_numpy()] = world.items["price_bucket"].to_numpy()
    price[PAD_ID] = 0
    return ItemFeatures(
        images=images_to_tensor(world.images),
        text_tokens=torch.as_tensor(world.text_tokens, dtype=torch.long),
        price_buckets=torch.from_numpy(price),
    )
