"""Are the explanations right? Attention on the history events that truly share the target's interest.

ShopWorld records the interest behind every event. For a test user whose next item comes from
interest k, a faithful explanation should put its weight on the history events of interest k.
The capstone's explanation of a candidate is its attention over the history events
(:meth:`CapstoneRecommender.explain`, summing to 1 over the real events), so

    share(user)   = sum over history events l of interest k of  w_l(target)
    uniform(user) = (number of history events of interest k) / (number of history events)

``uniform`` is what attention spread evenly would score; a share above it means the attention
singles out the right events. Users whose target is a random (noise) event have no true
interest and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...data.batch import Batch
from ...data.shopworld import NOISE
from ...data.split import SequenceSplit, pad_sequences
from .model import CapstoneRecommender

_PAD_INTEREST = -2  # interest recorded at padding slots (never equal to a real interest or NOISE)


def history_interests(split: SequenceSplit, event_interest: np.ndarray, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The true interest of every history event of a test batch, and of its target.

    Args:
        split: the split the batch was built from (``evaluation_batches(split, "test", ...)``).
        event_interest: (E,) the interest of every row of the source table (``world.interactions["interest"]``).
        batch: a test batch (history right-aligned, as ``evaluation_batches`` builds it).

    Returns:
        (history interests (B, L) int64, ``-2`` at padding; target interests (B,)).
    """
    length = batch.history.shape[1]
    rows = [split.rows[int(u)] for u in batch.users]
    history = pad_sequences([event_interest[r[:-1]] for r in rows], length, pad=_PAD_INTEREST)  # input = all but the last
    return history, np.array([event_interest[r[-1]] for r in rows])


@dataclass(frozen=True)
class InterestAlignment:
    """Attention mass on the target's true interest, per evaluated user."""

    share: np.ndarray  # (U',) attention mass on history events of the target's interest
    uniform: np.ndarray  # (U',) the same for uniform attention (the fraction of such events)
    users: np.ndarray  # (U',) the user indices evaluated (targets of a real interest only)

    @property
    def mean_share(self) -> float:
        return float(self.share.mean())

    @property
    def mean_uniform(self) -> float:
        return float(self.uniform.mean())


@torch.no_grad()
def interest_alignment(
    model: CapstoneRecommender, split: SequenceSplit, event_interest: np.ndarray, batches: list[Batch],
    *, device: torch.device | str = "cpu",
) -> InterestAlignment:
    """Share of each test target's explanation that lies on history events of the target's true interest.

    Args:
        model: a trained capstone (evaluated in eval mode, restored afterwards).
        split: the split of the batches.
        event_interest: (E,) ground-truth interest of every event row (``NOISE`` = random event).
        batches: test batches (``evaluation_batches(split, "test", max_len=model.config.max_len)``).
        device: where to compute.

    Returns:
        An :class:`InterestAlignment` over the users whose target has a real interest and
        whose history holds at least one event.
    """
    was_training = model.training
    model.to(device).eval()
    shares, uniforms, users = [], [], []
    try:
        for batch in batches:
            interests, target = history_interests(split, event_interest, batch)  # (B, L), (B,)
            weights, _ = model.explain(batch.to(device), batch.targets[:, None].to(device))  # (B, 1, L)
            weights = weights[:, 0].cpu().numpy()  # (B, L)
            same = interests == target[:, None]  # (B, L)
            real = interests != _PAD_INTEREST
            keep = (target != NOISE) & real.any(axis=1)
            shares.append((weights * same).sum(axis=1)[keep])
            uniforms.append((same.sum(axis=1) / np.maximum(real.sum(axis=1), 1))[keep])
            users.append(batch.users.numpy()[keep])
    finally:
        model.train(was_training)
    return InterestAlignment(np.concatenate(shares), np.concatenate(uniforms), np.concatenate(users))
