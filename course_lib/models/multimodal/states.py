"""What every modality encoder returns.

An encoder turns one item's raw input (an image, a text) into a sequence of token
states (image patches P, text tokens T) and one pooled vector. Keeping the states lets a
fusion look inside a modality (cross-modal attention); keeping the attention lets a
notebook draw it. Nothing is stored on the module: everything comes back in this record.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class ModalityStates:
    """The output of a modality encoder (:class:`PatchEncoder`, :class:`TextEncoder`)."""

    pooled: Tensor  # (B, D) one vector per item
    states: Tensor  # (B, T, D) one vector per token (T = P patches for images)
    token_mask: Tensor  # (B, T) bool, True = a real token (False = padding)
    attention: Tensor | None = None  # (B, n_layers, H, T, T) self-attention weights, if asked
