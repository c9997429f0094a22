"""Chunked attention with an online softmax: the idea behind fused (flash) attention kernels.

Plain attention builds the whole (Lq, Lk) score matrix, so its memory grows with L².
The softmax can instead be computed while the keys stream past in chunks of C, keeping
three running quantities per query row (Milakov & Gimelshein, 2018; Dao et al., 2022):

    m   running maximum of the scores seen so far
    s   running sum of exp(score - m)
    acc running sum of exp(score - m) * value

When a new chunk raises the maximum from m to m', everything accumulated so far is
rescaled by exp(m - m'); at the end ``output = acc / s``. The result equals
``softmax(q k^T / sqrt(D)) v`` exactly (up to float rounding), but only a (Lq, C) block
of scores exists at any time: extra memory grows linearly in L for a fixed chunk size.

Mask convention: boolean ``attn_mask``, True = may attend. A query row with no key to
attend to gets a zero output, never NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._validate import check_attn_mask, require_float, require_ndim, require_tensor


def _causal_block(length_q: int, length_k: int, start: int, stop: int, device: torch.device) -> Tensor:
    """Rows of ``causal_mask(length_q, length_k)`` restricted to key columns ``start .. stop-1``.

    Returns:
        bool (Lq, stop - start); True = may attend (key j <= query i + Lk - Lq).
    """
    query = torch.arange(length_q, device=device)[:, None] + (length_k - length_q)  # (Lq, 1)
    key = torch.arange(start, stop, device=device)[None, :]  # (1, C)
    return key <= query  # (Lq, C)


def chunked_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    *,
    is_causal: bool = False,
    chunk_size: int = 128,
    scale: float | None = None,
) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` computed over key chunks with an online softmax.

    Never materialises the (..., Lq, Lk) score matrix: each step scores one chunk of at
    most ``chunk_size`` keys, (..., Lq, C), and folds it into the running maximum, the
    running sum and the running weighted sum of values. Works for any leading batch dims.

    Args:
        q: queries (..., Lq, D).
        k: keys (..., Lk, D).
        v: values (..., Lk, Dv).
        attn_mask: bool, broadcastable to (..., Lq, Lk); True = may attend. None = attend
            to all. A dense mask is itself Lq x Lk booleans; prefer ``is_causal`` for the
            causal case, which builds each chunk's mask on the fly.
        is_causal: also apply the causal mask ``causal_mask(Lq, Lk)`` (the queries are the
            last Lq positions of the keys), combined (AND) with ``attn_mask``.
        chunk_size: C, keys per step (any positive int; the last chunk may be shorter).
        scale: score scale; default ``1/sqrt(D)``.

    Returns:
        output (..., Lq, Dv); rows with no allowed key are zero.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        require_tensor(x, name)
        require_float(x, name)
    require_ndim(q, "q", 2, "(..., Lq, D)")
    require_ndim(k, "k", 2, "(..., Lk, D)")
    require_ndim(v, "v", 2, "(..., Lk, Dv)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same feature size D, got q {tuple(q.shape)} and k {tuple(k.shape)}.")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must hold the same number of positions Lk, got k {tuple(k.shape)} and v {tuple(v.shape)}.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}.")
    length_q, length_k = q.shape[-2], k.shape[-2]
    if is_causal and length_k < length_q:
        raise ValueError(f"is_causal needs Lk >= Lq (queries are the last Lq keys), got Lq={length_q}, Lk={length_k}.")
    batch_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if attn_mask is not None:
        check_attn_mask(attn_mask, torch.Size((*batch_shape, length_q, length_k)))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    neg_inf = torch.tensor(float("-inf"), dtype=q.dtype, device=q.device)
    running_max = torch.full((*batch_shape, length_q, 1), float("-inf"), dtype=q.dtype, device=q.device)  # (..., Lq, 1)
    running_sum = torch.zeros((*batch_shape, length_q, 1), dtype=q.dtype, device=q.device)  # (..., Lq, 1)
    acc = torch.zeros((*batch_shape, length_q, v.shape[-1]), dtype=q.dtype, device=q.device)  # (..., Lq, Dv)
    for start in range(0, length_k, chunk_size):
        stop = min(start + chunk_size, length_k)
        scores = (q @ k[..., start:stop, :].transpose(-2, -1)) * scale  # (..., Lq, C)
        allowed = None
        if attn_mask is not None:
            # a mask whose last dim is 1 broadcasts over every key; otherwise take this chunk's columns
            allowed = attn_mask if attn_mask.shape[-1] == 1 else attn_mask[..., start:stop]
        if is_causal:
            block = _causal_block(length_q, length_k, start, stop, q.device)  # (Lq, C)
            allowed = block if allowed is None else allowed & block
        if allowed is not None:
            scores = torch.where(allowed, scores, neg_inf)  # (..., Lq, C); -inf = masked
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))  # (..., Lq, 1)
        # While a row has seen no allowed key its max is -inf; shift by 0 there so that
        # exp(-inf - 0) = 0 instead of exp(-inf - (-inf)) = NaN.
        shift = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))  # (..., Lq, 1)
        correction = torch.exp(running_max - shift)  # (..., Lq, 1): rescales what came before
        p = torch.exp(scores - shift)  # (..., Lq, C), 0 where masked
        running_sum = running_sum * correction + p.sum(dim=-1, keepdim=True)
        acc = acc * correction + p @ v[..., start:stop, :]  # (..., Lq, Dv)
        running_max = new_max
    # running_sum is 0 only for a row with no allowed key, whose acc is 0 too: 0 / tiny = 0
    return acc / running_sum.clamp_min(torch.finfo(q.dtype).tiny)  # (..., Lq, Dv)
