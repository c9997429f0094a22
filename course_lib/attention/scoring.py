"""Score functions: how well each query matches each key, before any softmax."""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from ._validate import require_float, require_ndim, require_tensor


def _check_query_key(q: Tensor, k: Tensor) -> None:
    for name, x in (("q", q), ("k", k)):
        require_tensor(x, name)
        require_float(x, name)
        require_ndim(x, name, 2, "(..., L, D)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            "q and k must have the same feature size D in their last dimension, "
            f"got q {tuple(q.shape)} and k {tuple(k.shape)}."
        )


def dot_product_scores(q: Tensor, k: Tensor, scale: float | None = 1.0) -> Tensor:
    """Dot-product scores ``s[i, j] = scale * <q_i, k_j>``.

    Args:
        q: queries (..., Lq, D).
        k: keys (..., Lk, D); leading dims broadcast with ``q``'s.
        scale: factor applied to every score; ``None`` means ``1/sqrt(D)`` (the
            *scaled* dot product of the Transformer). Default 1.0 (the plain dot product).

    Returns:
        Scores (..., Lq, Lk).
    """
    _check_query_key(q, k)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number (None = 1/sqrt(D)), got {scale!r}.")
    return (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk)


def cosine_scores(q: Tensor, k: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarity ``<q_i, k_j> / (|q_i| |k_j|)``: the dot product without lengths.

    Args:
        q: queries (..., Lq, D).
        k: keys (..., Lk, D).
        eps: guards against division by zero for an all-zero vector.

    Returns:
        Scores (..., Lq, Lk) in [-1, 1].
    """
    _check_query_key(q, k)
    q_unit = q / q.norm(dim=-1, keepdim=True).clamp_min(eps)
    k_unit = k / k.norm(dim=-1, keepdim=True).clamp_min(eps)
    return q_unit @ k_unit.transpose(-2, -1)  # (..., Lq, Lk)


def additive_scores(q: Tensor, k: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor) -> Tensor:
    """Additive (Bahdanau) scores ``s[i, j] = w_v . tanh(q_i W_q + k_j W_k)``.

    A small one-hidden-layer network scores each (query, key) pair, so queries and
    keys may have different sizes.

    Args:
        q: queries (..., Lq, Dq).
        k: keys (..., Lk, Dk).
        w_q: (Dq, A) projection of the queries into the hidden size A.
        w_k: (Dk, A) projection of the keys.
        w_v: (A,) vector that turns each hidden vector into one score.

    Returns:
        Scores (..., Lq, Lk).
    """
    for name, x in (("q", q), ("k", k), ("w_q", w_q), ("w_k", w_k), ("w_v", w_v)):
        require_tensor(x, name)
        require_float(x, name)
    require_ndim(q, "q", 2, "(..., Lq, Dq)")
    require_ndim(k, "k", 2, "(..., Lk, Dk)")
    if w_q.ndim != 2 or w_q.shape[0] != q.shape[-1]:
        raise ValueError(f"w_q must have shape (Dq={q.shape[-1]}, A), got {tuple(w_q.shape)}.")
    if w_k.ndim != 2 or w_k.shape[0] != k.shape[-1] or w_k.shape[1] != w_q.shape[1]:
        raise ValueError(
            f"w_k must have shape (Dk={k.shape[-1]}, A={w_q.shape[1]}), got {tuple(w_k.shape)}."
        )
    if w_v.shape != (w_q.shape[1],):
        raise ValueError(f"w_v must have shape (A={w_q.shape[1]},), got {tuple(w_v.shape)}.")
    hidden_q = (q @ w_q).unsqueeze(-2)  # (..., Lq, 1, A)
    hidden_k = (k @ w_k).unsqueeze(-3)  # (..., 1, Lk, A)
    return torch.tanh(hidden_q + hidden_k) @ w_v  # (..., Lq, Lk)
