"""Positional encodings: tell an order-blind attention layer where each token sits.

Self-attention without positions is permutation-equivariant (shuffle the inputs and the
outputs shuffle the same way), so a model could not tell "A then B" from "B then A".
Adding a vector that depends on the position fixes that. Two kinds:

* sinusoidal (fixed, Vaswani et al. 2017):
  ``P[pos, 2i] = sin(pos / 10000^(2i/D))``, ``P[pos, 2i+1] = cos(pos / 10000^(2i/D))``;
* learned: one trainable vector per position (an ``nn.Embedding``), as in BERT, GPT, SASRec.

Both modules add the encoding to their input and take optional explicit ``positions``
(e.g. an offset when decoding with a key/value cache, or per-sequence positions).

Recommenders read right-aligned histories (newest event at slot L-1). Two ways to number
their slots, each one function:

* :func:`positions_from_newest` - ``L-1 .. 0``: the newest slot is position 0, so the
  amount of left padding changes nothing (SASRec, BERT4Rec, DIN's recency);
* :func:`positions_from_oldest` - ``0, 1, 2, ...`` over the real events: a new event never
  moves an earlier one, so a key/value cache stays valid (streaming, notebook 14).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_positions(
    length: int, d_model: int, *, base: float = 10000.0, device: torch.device | str | None = None
) -> Tensor:
    """The fixed sinusoidal encodings of positions ``0 .. length-1``.

    Column pair (2i, 2i+1) is a sine and a cosine of frequency ``1 / base^(2i/D)``: fast
    waves in the first columns, slow waves in the last. For odd D the last column is a
    sine without its cosine partner.

    Args:
        length: L, number of positions.
        d_model: D, size of each encoding.
        base: the wavelength scale (10000 in the original paper).
        device: where to create the tensor.

    Returns:
        Float tensor (L, D) with values in [-1, 1]; row ``pos`` encodes position ``pos``.
    """
    for name, value in (("length", length), ("d_model", d_model)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"sinusoidal_positions: {name} must be a positive int, got {value!r}.")
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]  # (L, 1)
    even = torch.arange(0, d_model, 2, dtype=torch.float32, device=device)  # (ceil(D/2),) = 2i
    frequency = torch.exp(-math.log(base) * even / d_model)  # (ceil(D/2),) = 1 / base^(2i/D)
    angle = position * frequency  # (L, ceil(D/2))
    encoding = torch.empty(length, d_model, device=device)  # (L, D)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return encoding


def positions_from_newest(length: int, *, device: torch.device | str | None = None) -> Tensor:
    """Slot indices counted back from the newest slot: ``L-1, L-2, ..., 0``.

    Args:
        length: L, the number of slots (right-aligned: the newest event at slot L-1).
        device: where to create the tensor.

    Returns:
        Long (L,); entry l is ``L-1-l`` (the newest slot gets 0).
    """
    return torch.arange(length - 1, -1, -1, device=device)  # (L,)


def positions_from_oldest(real: Tensor) -> Tensor:
    """Slot indices counted from the oldest real event: ``0, 1, 2, ...``; padding does not count.

    Args:
        real: bool (B, L), True = a real event (padding on the left).

    Returns:
        Long (B, L): the number of real events up to and including each slot, minus 1
        (clamped at 0, so padding before the first event gets position 0; it is never
        attended to).
    """
    if not isinstance(real, Tensor) or real.dtype != torch.bool or real.ndim != 2:
        got = f"{real.dtype} {tuple(real.shape)}" if isinstance(real, Tensor) else type(real).__name__
        raise ValueError(f"real must be a bool (B, L) tensor, True = a real event (e.g. history != PAD_ID), got {got}.")
    return (real.long().cumsum(dim=1) - 1).clamp_min(0)  # (B, L)


def _positions(x: Tensor, positions: Tensor | None, max_len: int) -> Tensor:
    """Default positions 0..L-1, or the given ones, checked against ``max_len``."""
    if x.ndim != 3:
        raise ValueError(f"expected input of shape (B, L, D), got {tuple(x.shape)}.")
    length = x.shape[1]
    if positions is None:
        positions = torch.arange(length, device=x.device)  # (L,)
    if positions.dtype in (torch.bool,) or positions.is_floating_point():
        raise TypeError(f"positions must be integer indices, got dtype {positions.dtype}.")
    if positions.shape[-1] != length or positions.ndim not in (1, 2):
        raise ValueError(
            f"positions must have shape (L,) or (B, L) with L = {length}, got {tuple(positions.shape)}."
        )
    if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= max_len):
        raise ValueError(
            f"positions must lie in 0..{max_len - 1} (max_len = {max_len}), got "
            f"{int(positions.min())}..{int(positions.max())}. Build the encoding with a larger max_len."
        )
    return positions


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding (no trainable parameters).

    Args:
        d_model: D.
        max_len: the longest sequence (or largest position) that will be encoded.
        base: wavelength scale, see :func:`sinusoidal_positions`.
    """

    def __init__(self, d_model: int, max_len: int = 512, *, base: float = 10000.0) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        # A buffer: moves with .to(device), is not trained, not saved (it is recomputable).
        self.register_buffer("encoding", sinusoidal_positions(max_len, d_model, base=base), persistent=False)

    def forward(self, x: Tensor, *, positions: Tensor | None = None) -> Tensor:
        """Return ``x + P[positions]``.

        Args:
            x: (B, L, D).
            positions: integer (L,) or (B, L); default ``0 .. L-1``.

        Returns:
            (B, L, D).
        """
        positions = _positions(x, positions, self.max_len)
        return x + self.encoding[positions].to(x.dtype)  # (L, D) or (B, L, D) broadcast

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(nn.Module):
    """Adds a trainable vector per position (BERT / GPT / SASRec style).

    Args:
        d_model: D.
        max_len: number of positions that get a vector; positions beyond it are an error.
        init_std: standard deviation of the normal initialisation.
    """

    def __init__(self, d_model: int, max_len: int = 512, *, init_std: float = 0.02) -> None:
        super().__init__()
        self.d_model = d_model
        self.max_len = max_len
        self.embedding = nn.Embedding(max_len, d_model)  # (max_len, D)
        nn.init.normal_(self.embedding.weight, std=init_std)

    def forward(self, x: Tensor, *, positions: Tensor | None = None) -> Tensor:
        """Return ``x + E[positions]``.

        Args:
            x: (B, L, D).
            positions: integer (L,) or (B, L); default ``0 .. L-1``.

        Returns:
            (B, L, D).
        """
        positions = _positions(x, positions, self.max_len)
        return x + self.embedding(positions)  # (L, D) or (B, L, D) broadcast

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"
