"""Boolean attention masks. One convention everywhere: True = may attend.

This is the convention of ``torch.nn.functional.scaled_dot_product_attention``.
Masks broadcast to the attention scores, shape (B, H, Lq, Lk). Convert only at the
boundary with libraries that use the opposite convention, for example
``key_padding_mask=~attn_mask`` for ``torch.nn.MultiheadAttention``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..constants import PAD_ID


def causal_mask(
    length_q: int, length_k: int | None = None, *, device: torch.device | str | None = None
) -> Tensor:
    """Mask that lets each position attend to itself and to earlier positions only.

    With ``length_k > length_q`` the queries are the *last* ``length_q`` positions of a
    sequence of ``length_k`` (the key/value-cache case): query ``i`` may attend to keys
    ``0 .. i + (length_k - length_q)``.

    Args:
        length_q: number of query positions Lq.
        length_k: number of key positions Lk (default: ``length_q``); at least ``length_q``.
        device: where to create the mask.

    Returns:
        Bool tensor (Lq, Lk); True = may attend.
    """
    length_k = length_q if length_k is None else length_k
    for name, value in (("length_q", length_q), ("length_k", length_k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"causal_mask: {name} must be a positive int, got {value!r}.")
    if length_k < length_q:
        raise ValueError(
            f"causal_mask: length_k ({length_k}) must be >= length_q ({length_q}); "
            "the queries are the last length_q positions of the keys."
        )
    ones = torch.ones(length_q, length_k, dtype=torch.bool, device=device)
    return torch.tril(ones, diagonal=length_k - length_q)  # (Lq, Lk)


def padding_mask(items: Tensor, pad_id: int = PAD_ID) -> Tensor:
    """Mask that hides padded keys: True where the key is a real item.

    Args:
        items: integer ids (B, L); ``pad_id`` marks padding.
        pad_id: the padding id (default ``PAD_ID = 0``).

    Returns:
        Bool tensor (B, 1, 1, L), broadcastable to attention scores (B, H, Lq, L).
        True = may attend (the key is not padding). For single-head scores of shape
        (B, Lq, L) use ``padding_mask(items)[:, 0]`` (shape (B, 1, L)).
    """
    if not isinstance(items, Tensor) or items.ndim != 2:
        shape = tuple(items.shape) if isinstance(items, Tensor) else type(items).__name__
        raise ValueError(f"padding_mask expects item ids of shape (B, L), got {shape}.")
    if items.is_floating_point() or items.dtype == torch.bool:
        raise TypeError(f"padding_mask expects integer item ids, got dtype {items.dtype}.")
    return (items != pad_id)[:, None, None, :]  # (B, 1, 1, L)


def lengths_mask(lengths: Tensor, max_length: int) -> Tensor:
    """Key mask from sequence lengths: True at the first ``lengths[b]`` positions.

    Args:
        lengths: integer lengths (B,), each in ``0 .. max_length``.
        max_length: L, the padded length.

    Returns:
        Bool tensor (B, 1, 1, L); True = may attend (a real, non-padded position).
    """
    if not isinstance(lengths, Tensor) or lengths.ndim != 1:
        raise ValueError("lengths_mask expects a 1-D tensor of lengths (B,).")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > max_length):
        raise ValueError(
            f"lengths_mask: every length must lie in 0..{max_length}, "
            f"got min {int(lengths.min())}, max {int(lengths.max())}."
        )
    positions = torch.arange(max_length, device=lengths.device)  # (L,)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, L)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Combine masks: a key may be attended only if every mask allows it (logical AND).

    ``None`` entries mean "no restriction" and are skipped; returns ``None`` if all are.
    The result has the broadcast shape of the inputs.
    """
    result: Tensor | None = None
    for mask in masks:
        if mask is None:
            continue
        if mask.dtype != torch.bool:
            raise TypeError(f"combine_masks expects boolean masks (True = may attend), got {mask.dtype}.")
        result = mask if result is None else result & mask
    return result
