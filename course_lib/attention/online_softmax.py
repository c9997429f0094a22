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

The running statistics are kept in float32 for float16 / bfloat16 inputs (as fused
kernels do): a float16 running sum over thousands of keys would lose most of its digits.
The output is returned in the inputs' dtype.

Mask convention: boolean ``attn_mask``, True = may attend. A query row with no key to
attend to gets a zero output, never NaN.

``flash.py`` tiles the queries too and adds the backward pass; it shares the helpers below.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._validate import check_attn_mask, require_float, require_ndim, require_tensor


def stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the running statistics: float32 for half inputs, else the input dtype (float32/64)."""
    return torch.promote_types(dtype, torch.float32)


def check_qkv(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, is_causal: bool) -> torch.Size:
    """Validate q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv) and the mask; return the batch shape."""
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
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype} and {v.dtype}.")
    length_q, length_k = q.shape[-2], k.shape[-2]
    if is_causal and length_k < length_q:
        raise ValueError(f"is_causal needs Lk >= Lq (queries are the last Lq keys), got Lq={length_q}, Lk={length_k}.")
    batch_shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if attn_mask is not None:
        check_attn_mask(attn_mask, torch.Size((*batch_shape, length_q, length_k)))
    return batch_shape


def check_block_size(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return value


def allowed_block(
    attn_mask: Tensor | None, is_causal: bool, length_q: int, length_k: int, rows: slice, cols: slice, device: torch.device
) -> Tensor | None:
    """The block ``[rows, cols]`` of the combined mask (``attn_mask`` AND causal), or None if nothing is masked.

    Returns:
        bool, broadcastable to (..., rows, cols); True = may attend (causal: key j <= query i + Lk - Lq).
    """
    allowed = None
    if attn_mask is not None:
        block = attn_mask if attn_mask.ndim >= 2 else attn_mask[None, :]  # (..., Lq or 1, Lk or 1)
        if block.shape[-2] != 1:
            block = block[..., rows, :]
        allowed = block if block.shape[-1] == 1 else block[..., cols]
    if is_causal:
        query = torch.arange(rows.start, rows.stop, device=device)[:, None] + (length_k - length_q)  # (rows, 1)
        key = torch.arange(cols.start, cols.stop, device=device)[None, :]  # (1, cols)
        causal = key <= query  # (rows, cols)
        allowed = causal if allowed is None else allowed & causal
    return allowed


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
    Statistics and accumulation are float32 for float16/bfloat16 inputs.

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
        output (..., Lq, Dv) in q's dtype; rows with no allowed key are zero.
    """
    batch_shape = check_qkv(q, k, v, attn_mask, is_causal)
    check_block_size(chunk_size, "chunk_size")
    length_q, length_k = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    acc_dtype = stats_dtype(q.dtype)
    q_acc = q.to(acc_dtype)

    running_max = torch.full((*batch_shape, length_q, 1), float("-inf"), dtype=acc_dtype, device=q.device)  # (..., Lq, 1)
    running_sum = torch.zeros((*batch_shape, length_q, 1), dtype=acc_dtype, device=q.device)  # (..., Lq, 1)
    acc = torch.zeros((*batch_shape, length_q, v.shape[-1]), dtype=acc_dtype, device=q.device)  # (..., Lq, Dv)
    for start in range(0, length_k, chunk_size):
        stop = min(start + chunk_size, length_k)
        scores = (q_acc @ k[..., start:stop, :].to(acc_dtype).transpose(-2, -1)) * scale  # (..., Lq, C)
        allowed = allowed_block(attn_mask, is_causal, length_q, length_k, slice(0, length_q), slice(start, stop), q.device)
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))  # (..., Lq, C); -inf = masked
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))  # (..., Lq, 1)
        # While a row has seen no allowed key its max is -inf; shift by 0 there so that
        # exp(-inf - 0) = 0 instead of exp(-inf - (-inf)) = NaN.
        shift = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))  # (..., Lq, 1)
        correction = torch.exp(running_max - shift)  # (..., Lq, 1): rescales what came before
        p = torch.exp(scores - shift)  # (..., Lq, C), 0 where masked
        running_sum = running_sum * correction + p.sum(dim=-1, keepdim=True)
        acc = acc * correction + p @ v[..., start:stop, :].to(acc_dtype)  # (..., Lq, Dv)
        running_max = new_max
    # running_sum is 0 only for a row with no allowed key, whose acc is 0 too: 0 / tiny = 0
    return (acc / running_sum.clamp_min(torch.finfo(acc_dtype).tiny)).to(q.dtype)  # (..., Lq, Dv)
