"""Pooling a sequence of vectors into fewer vectors, with padding left out.

* :func:`masked_mean` - one vector per sequence: the mean over its real tokens
  (a text encoder's sentence vector, a bag of image patches);
* :func:`prefix_attention_pool` - K learned queries pool *every prefix* of a sequence at
  once (multi-interest extraction, the capstone's interests): position l's K vectors read
  positions ``<= l`` only, so training at every position stays causal.

Mask convention: boolean, True = a real token that may be pooled.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..attention import causal_mask, masked_softmax


def masked_mean(states: Tensor, keep: Tensor) -> Tensor:
    """Average the states of the real tokens.

    Args:
        states: (B, T, D).
        keep: (B, T) bool, True = a real token that counts in the mean.

    Returns:
        (B, D); a row with no real token gives the zero vector (never NaN).
    """
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool or keep.shape != states.shape[:2]:
        got = f"{keep.dtype} {tuple(keep.shape)}" if isinstance(keep, Tensor) else type(keep).__name__
        raise ValueError(f"the mask must be bool (B, T) = {tuple(states.shape[:2])} (True = real token), got {got}.")
    weight = keep.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
    count = weight.sum(dim=1).clamp_min(1.0)  # (B, 1)
    return (states * weight).sum(dim=1) / count  # (B, D)


def prefix_attention_pool(scores: Tensor, values: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """K queries pool every prefix: position l's weights cover the real positions j <= l.

        A[b, l, k, j] = softmax over real j <= l of scores[b, k, j]
        pooled[b, l, k] = sum_j A[b, l, k, j] values[b, j]

    Args:
        scores: (B, K, L) score of each query k on each position j (computed once; only the
            set of positions it is normalised over depends on l).
        values: (B, L, D) the vectors being pooled.
        real: (B, L) bool, True = a real position (False = padding, never pooled).

    Returns:
        pooled (B, L, K, D) and weights (B, L, K, L); a prefix with no real position pools
        to zeros (zero weights, never NaN).
    """
    if scores.ndim != 3 or values.ndim != 3 or real.shape != values.shape[:2] or scores.shape[-1] != values.shape[1]:
        raise ValueError(
            f"expected scores (B, K, L), values (B, L, D) and real (B, L) with the same B and L, got "
            f"{tuple(scores.shape)}, {tuple(values.shape)} and {tuple(real.shape)}."
        )
    length = values.shape[1]
    causal = causal_mask(length, device=values.device)[None, :, None, :]  # (1, Lq, 1, Lk), True = j <= l
    allowed = causal & real[:, None, None, :]  # (B, Lq, 1, Lk)
    weights = masked_softmax(scores[:, None].expand(-1, length, -1, -1), allowed)  # (B, Lq, K, Lk)
    batch, _, queries, _ = weights.shape
    # One (Lq K, Lk) @ (Lk, D) product per sequence. Broadcasting values to (B, Lq, Lk, D) instead
    # would give the same numbers, but its backward materialises and sums that (B, L, L, D) tensor.
    pooled = weights.reshape(batch, length * queries, length) @ values  # (B, Lq K, Lk) @ (B, Lk, D) -> (B, Lq K, D)
    return pooled.reshape(batch, length, queries, -1), weights  # (B, Lq, K, D)
