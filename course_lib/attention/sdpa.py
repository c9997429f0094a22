"""Scaled dot-product attention as a pure function returning (output, weights)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._validate import require_float, require_ndim, require_tensor
from .scoring import dot_product_scores
from .softmax import masked_softmax


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    *,
    scale: float | None = None,
) -> tuple[Tensor, Tensor]:
    """``softmax(q k^T / sqrt(D) + mask) v``, returning the output and the weights.

    Works for any number of leading batch dims (``(Lq, D)``, ``(B, Lq, D)``,
    ``(B, H, Lq, D)``, ...). Agrees with ``torch.nn.functional.scaled_dot_product_attention``
    on every row that has at least one key to attend to. A row whose keys are all
    masked gets zero weights and a zero output, never NaN (recent torch versions also
    return zeros there; older ones, and ``nn.MultiheadAttention``'s weights, give NaN).

    Args:
        q: queries (..., Lq, D).
        k: keys (..., Lk, D).
        v: values (..., Lk, Dv).
        attn_mask: bool, broadcastable to (..., Lq, Lk); True = may attend. None = attend to all.
        dropout_p: probability of dropping each weight (applied whenever > 0, as torch
            does; pass 0.0 at evaluation time). Kept weights are scaled by 1/(1-p).
        scale: score scale; default ``1/sqrt(D)``.

    Returns:
        output: (..., Lq, Dv).
        weights: (..., Lq, Lk), the weights that produced ``output`` (after dropout,
            like torch.nn.MultiheadAttention), so ``output == weights @ v`` always.
    """
    require_tensor(v, "v")
    require_float(v, "v")
    require_ndim(v, "v", 2, "(..., Lk, Dv)")
    if k.ndim >= 2 and v.shape[-2] != k.shape[-2]:
        raise ValueError(
            "k and v must hold the same number of positions Lk (their second-to-last "
            f"dimension), got k {tuple(k.shape)} and v {tuple(v.shape)}."
        )
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must lie in [0, 1), got {dropout_p!r}.")
    scores = dot_product_scores(q, k, scale=scale)  # (..., Lq, Lk)
    weights = masked_softmax(scores, attn_mask)  # (..., Lq, Lk)
    if dropout_p > 0.0:
        weights = torch.nn.functional.dropout(weights, p=dropout_p, training=True)
    return weights @ v, weights  # (..., Lq, Dv), (..., Lq, Lk)
