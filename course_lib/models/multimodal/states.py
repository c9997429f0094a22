"""What every modality encoder returns, and the masked mean that pools token states.

An encoder turns one item's raw input (an image, a text) into a sequence of token
states (image patches P, text tokens T) and one pooled vector. Keeping the states lets a
fusion look inside a modality (cross-modal attention); keeping the attention lets a
notebook draw it. Nothing is stored on the module: everything comes back in this record.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ModalityStates:
    """The output of a modality encoder (:class:`PatchEncoder`, :class:`TextEncoder`)."""

    pooled: Tensor  # (B, D) one vector per item
    states: Tensor  # (B, T, D) one vector per token (T = P patches for images)
    token_mask: Tensor  # (B, T) bool, True = a real token (False = padding)
    attention: Tensor | None = None  # (B, n_layers, H, T, T) self-attention weights, if asked


def masked_mean(states: Tensor, token_mask: Tensor) -> Tensor:
    """Average the states of the real tokens.

    Args:
        states: (B, T, D).
        token_mask: (B, T) bool, True = a real token that counts in the mean.

    Returns:
        (B, D); a row with no real token gives the zero vector (never NaN).
    """
    if token_mask.dtype != torch.bool or token_mask.shape != states.shape[:2]:
        raise ValueError(
            f"token_mask must be bool (B, T) = {tuple(states.shape[:2])} (True = real token), "
            f"got {token_mask.dtype} {tuple(token_mask.shape)}."
        )
    weight = token_mask.to(states.dtype).unsqueeze(-1)  # (B, T, 1)
    count = weight.sum(dim=1).clamp_min(1.0)  # (B, 1)
    return (states * weight).sum(dim=1) / count  # (B, D)
