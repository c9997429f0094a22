"""Softmax, the numerically stable way, and a masked softmax that never returns NaN."""

from __future__ import annotations

import torch
from torch import Tensor

from ._validate import check_attn_mask, require_float, require_tensor


def softmax(scores: Tensor, dim: int = -1, temperature: float = 1.0) -> Tensor:
    """Stable softmax: ``exp(s_i/T - m) / sum_j exp(s_j/T - m)`` with ``m = max_j s_j/T``.

    Subtracting the maximum changes nothing mathematically (it cancels) but keeps
    ``exp`` from overflowing for large scores.

    Args:
        scores: float tensor of any shape.
        dim: the axis to normalise over; it must be the axis of the *alternatives*
            (keys, items), not an axis of size 1.
        temperature: T > 0; small T sharpens towards argmax, large T flattens.

    Returns:
        Tensor of the same shape whose entries along ``dim`` are >= 0 and sum to 1. Like
        ``torch.softmax``: an empty ``dim`` gives an empty result, and a row holding NaN or
        +inf (or only -inf) gives NaN.
    """
    require_tensor(scores, "scores")
    require_float(scores, "scores")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}.")
    if scores.shape[dim] == 0:  # no alternatives: nothing to normalise
        return scores.clone()
    scaled = scores / temperature
    shifted = scaled - scaled.amax(dim=dim, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def masked_softmax(scores: Tensor, attn_mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that gives zero weight wherever ``attn_mask`` is False.

    A row whose entries are all masked gets all-zero weights (not NaN, and not a
    uniform spread over the masked entries), and gradients stay finite.

    Args:
        scores: float scores (..., Lq, Lk).
        attn_mask: bool, broadcastable to ``scores``; True = may attend. None = no mask.
        dim: the axis to normalise over (the keys).

    Returns:
        Weights with the shape of ``scores``; each row sums to 1, or to 0 if fully masked (or
        empty). A NaN or +inf score at an allowed position makes its row NaN, as in ``torch.softmax``;
        masked positions are ignored whatever they hold.
    """
    require_tensor(scores, "scores")
    require_float(scores, "scores")
    if attn_mask is None:
        return softmax(scores, dim=dim)
    check_attn_mask(attn_mask, scores.shape)
    if scores.shape[dim] == 0:  # no keys at all: an empty row of weights
        return scores.clone()
    # A finite fill (not -inf) keeps a fully masked row from computing -inf - (-inf) = NaN.
    filled = scores.masked_fill(~attn_mask, torch.finfo(scores.dtype).min)
    shifted = filled - filled.amax(dim=dim, keepdim=True)
    exp = torch.where(attn_mask, shifted.exp(), torch.zeros((), dtype=scores.dtype, device=scores.device))
    total = exp.sum(dim=dim, keepdim=True)
    # total is 0 only for a fully masked row, whose numerators are 0 too: 0 / tiny = 0.
    return exp / total.clamp_min(torch.finfo(scores.dtype).tiny)
