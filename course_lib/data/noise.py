"""Noisy histories: replace a share of the events by random items (accidental clicks).

Used to test how robust a recommender is: train on clean data, then evaluate on
histories where each real event was, with probability ``rate``, a click on a uniformly
random item instead. Padding stays padding, every history keeps its length and
alignment, and the draws come from an explicit ``torch.Generator`` (same seed, same noise,
on every device).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ..constants import PAD_ID
from .batch import Batch

__all__ = ["add_noise", "noisy_batch"]


def add_noise(
    history: Tensor, rate: float, num_items: int, generator: torch.Generator, *, avoid: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Replace each real event by a uniform random item with probability ``rate``.

    Args:
        history: (B, L) item ids, ``PAD_ID``-padded.
        rate: probability in [0, 1] that a real event becomes noise.
        num_items: I; noise items are drawn from 1..I.
        generator: a CPU ``torch.Generator`` (the draws are made on the CPU, then moved).
        avoid: optional (B,) item per row that noise must never be (e.g. the target, so
            noise cannot leak it into the history); a draw equal to it moves to the next id.

    Returns:
        The noisy history (B, L) (same dtype, device, padding) and a (B, L) bool mask,
        True where an event was replaced.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be a probability in [0, 1], got {rate}.")
    if history.ndim != 2:
        raise ValueError(f"history must be (B, L) item ids, got shape {tuple(history.shape)}.")
    if num_items < 2 and avoid is not None:
        raise ValueError(f"avoiding an item needs at least 2 items, got num_items={num_items}.")
    flip = torch.rand(history.shape, generator=generator) < rate  # (B, L), drawn on the CPU
    random_items = torch.randint(1, num_items + 1, history.shape, generator=generator)  # (B, L)
    if avoid is not None:
        clash = random_items == avoid.cpu()[:, None]
        random_items = torch.where(clash, random_items % num_items + 1, random_items)  # next id, wrapping I -> 1
    flip = flip.to(history.device) & (history != PAD_ID)  # padding never becomes an item
    noisy = torch.where(flip, random_items.to(history.device, history.dtype), history)
    return noisy, flip


def noisy_batch(batch: Batch, rate: float, num_items: int, generator: torch.Generator) -> Batch:
    """A copy of an evaluation ``batch`` with a noisy history (targets never drawn as noise).

    ``seen`` (the items excluded from the ranking) is left as it was: the user's real past.
    """
    history, _ = add_noise(batch.history, rate, num_items, generator, avoid=batch.targets)
    return dataclasses.replace(batch, history=history)
