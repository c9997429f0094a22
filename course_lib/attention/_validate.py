"""Input checks shared by the attention functions, with errors that teach."""

from __future__ import annotations

import torch
from torch import Tensor


def require_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    return x


def require_ndim(x: Tensor, name: str, at_least: int, meaning: str) -> None:
    if x.ndim < at_least:
        raise ValueError(
            f"{name} must have at least {at_least} dimensions {meaning}, "
            f"got shape {tuple(x.shape)}."
        )


def require_float(x: Tensor, name: str) -> None:
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}. "
            f"Try {name}.float()."
        )


def check_attn_mask(attn_mask: Tensor, scores_shape: torch.Size) -> None:
    """Check that ``attn_mask`` is boolean and broadcasts to ``scores_shape`` without growing it."""
    require_tensor(attn_mask, "attn_mask")
    if attn_mask.dtype != torch.bool:
        raise TypeError(
            "attn_mask must be a boolean tensor where True = may attend, "
            f"got dtype {attn_mask.dtype}. If you have 0/1 values, use attn_mask.bool(); "
            "if you have an additive float mask (0 / -inf), use attn_mask == 0."
        )
    try:
        broadcast = torch.broadcast_shapes(attn_mask.shape, scores_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != scores_shape:
        raise ValueError(
            f"attn_mask of shape {tuple(attn_mask.shape)} does not broadcast to the attention "
            f"scores of shape {tuple(scores_shape)} (..., Lq, Lk). Give it shape (Lq, Lk), "
            "(B, 1, Lq, Lk), (B, 1, 1, Lk) or anything else that broadcasts to the scores "
            "without adding dimensions."
        )
