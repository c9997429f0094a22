"""Checkers for notebook 08 (SASRec: causal self-attention over the history).

* :func:`check_next_item_loss` - the full-catalogue cross-entropy at every position of a
  window, with the padding positions left out;
* :func:`check_attention_by_distance` - the recency profile of causal attention.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..attention import causal_mask, masked_softmax, padding_mask
from ..constants import PAD_ID
from ..models.sasrec import attention_by_distance
from .core import Mismatch, answered, call, expect, expect_close, report, run_check


def _loss_case(seed: int, *, batch: int = 3, length: int = 6, items: int = 9, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, dim, generator=g)  # (B, L, D)
    item_embeddings = torch.randn(items + 1, dim, generator=g)  # (I + 1, D), row 0 = PAD_ID
    seq_targets = torch.randint(1, items + 1, (batch, length), generator=g)  # (B, L)
    for row in range(batch):
        seq_targets[row, : row * 2] = PAD_ID  # row 0 full, later rows padded on the left
    keep = seq_targets != PAD_ID
    logits = hidden[keep] @ item_embeddings[1:].T  # (P, I)
    return hidden, item_embeddings, seq_targets, F.cross_entropy(logits, seq_targets[keep] - 1)


def check_next_item_loss(next_item_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``next_item_loss(hidden (B, L, D), item_embeddings (I+1, D), seq_targets (B, L)) -> scalar``."""

    def trial() -> None:
        for seed in range(4):
            hidden, item_embeddings, seq_targets, expected = _loss_case(seed)
            got = answered(call(next_item_loss, hidden, item_embeddings, seq_targets), "the loss")
            if not isinstance(got, torch.Tensor) or got.numel() != 1:
                raise Mismatch(f"return a scalar tensor (the mean over target positions), got {got!r:.60}.")
            logits_everywhere = hidden.reshape(-1, hidden.shape[-1]) @ item_embeddings[1:].T  # (B*L, I)
            with_padding = F.cross_entropy(logits_everywhere, (seq_targets.reshape(-1) - 1).clamp_min(0))
            expect(
                not torch.isclose(got.detach().reshape(()), with_padding).item(),
                "padding positions (seq_targets == PAD_ID) have no target: leave them out of the mean.",
            )
            expect_close(
                got.reshape(()),
                expected,
                what="the mean cross-entropy",
                hint="keep = seq_targets != PAD_ID; logits = hidden[keep] @ item_embeddings[1:].T (row 0 is PAD_ID, "
                "so column c is item c + 1); F.cross_entropy(logits, seq_targets[keep] - 1).",
                atol=1e-5,
                rtol=1e-5,
            )

    report(run_check("Exercise 1 (next-item loss at every position)", trial, "It is the loss SASRec.loss computes."))


def _attention_case(seed: int, *, batch: int = 3, length: int = 7):
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, 20, (batch, length), generator=g)
    for row in range(batch):
        history[row, : row * 2] = PAD_ID  # different amounts of left padding
    scores = torch.randn(batch, length, length, generator=g)
    mask = causal_mask(length) & padding_mask(history)[:, 0]  # (B, L, L), True = may attend
    return masked_softmax(scores, mask), history


def check_attention_by_distance(student: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``student(weights (B, L, L), history (B, L)) -> (L,)`` mean weight per distance."""

    def trial() -> None:
        # worked case: one user, three items, weights chosen by hand
        weights = torch.tensor([[[1.0, 0.0, 0.0], [0.25, 0.75, 0.0], [0.1, 0.3, 0.6]]])
        history = torch.tensor([[5, 6, 7]])
        got = answered(call(student, weights, history), "the recency profile")
        if not isinstance(got, torch.Tensor) or got.shape != (3,):
            raise Mismatch(f"return a tensor of shape (L,) = (3,), got {getattr(got, 'shape', type(got).__name__)}.")
        expect_close(
            got, torch.tensor([(1.0 + 0.75 + 0.6) / 3, (0.25 + 0.3) / 2, 0.1]), what="the profile of the worked case",
            hint="distance d = query position - key position; average weights[b, q, q - d] over every q with q - d >= 0.",
        )
        for seed in range(3):
            weights, history = _attention_case(seed)
            got = call(student, weights, history)
            expected, _ = attention_by_distance(weights, history)
            expect_close(
                got, expected, what="the profile with padding",
                hint="leave out every pair whose query or key is padding (history == PAD_ID), "
                "then average the remaining weights that share a distance.",
            )

    report(run_check("Exercise 2 (attention by distance)", trial, "It matches course_lib.models.attention_by_distance."))
