"""Checkers for notebook 08 (SASRec: causal self-attention over the history).

* :func:`check_next_item_loss` - the full-catalogue cross-entropy at every position of a
  window, with the padding positions left out;
* :func:`check_attention_by_distance` - the recency profile of causal attention;
* :func:`check_paired_verdict` - a judgement: is the difference between two models on the same
  users real? Checked on cases where comparing means, or two separate intervals, decides wrongly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..attention import causal_mask, masked_softmax, padding_mask
from ..constants import PAD_ID
from ..models.sasrec import attention_by_distance
from .core import Mismatch, answered, call, expect, expect_close, forbid, report, run_check


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


# Exercise 3: is a difference between two models real? -----------------------------------------

_VERDICTS = ("a", "b", "tie")


def _users_differ(seed: int, users: int, shift: float, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-user scores of two models that share each user's difficulty: ``a - b`` has mean exactly ``shift``."""
    g = torch.Generator().manual_seed(seed)
    difficulty = torch.rand(users, generator=g, dtype=torch.float64) ** 2  # (U,) easy and hard users, shared
    d = noise * torch.randn(users, generator=g, dtype=torch.float64)  # (U,) per-user difference
    d = d - d.mean() + shift  # its mean is exactly `shift`
    return difficulty + d / 2, difficulty - d / 2


def _paired_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, str]]:
    """(name, a, b, right verdict); the first two are where the naive rules fail."""
    return [
        ("unpaired intervals overlap, the paired one lies above 0", *_users_differ(31, 400, 0.02, 0.03), "a"),
        ("mean difference is positive, the paired interval covers 0", *_users_differ(32, 400, 0.006, 0.25), "tie"),
        ("b is better, unpaired intervals overlap", *_users_differ(33, 300, -0.015, 0.04), "b"),
        ("the same model twice", *(lambda x: (x, x.clone()))(_users_differ(34, 200, 0.0, 0.1)[0]), "tie"),
    ]


def check_paired_verdict(verdict: Callable[[torch.Tensor, torch.Tensor], str]) -> None:
    """Check ``verdict(a (U,), b (U,)) -> "a" | "b" | "tie"``: the paired 95% interval of ``mean(a - b)`` decides."""

    def trial() -> None:
        answered(verdict, "verdict")
        forbid(verdict, ("compare", "paired_difference", "ttest_rel"),
               "compute the interval from the per-user differences d = a - b yourself.")
        for name, a, b, right in _paired_cases():
            got = call(verdict, a.clone(), b.clone())
            if not isinstance(got, str) or got not in _VERDICTS:
                raise Mismatch(f'return one of the strings "a", "b" or "tie", got {got!r:.60}.')
            if got == right:
                continue
            if right == "a" and got == "tie":
                raise Mismatch(f"case '{name}': you called it a tie. Two separate intervals (one per model, or one for the "
                               "difference of two independent means) carry the spread *between users*, which both models "
                               "share; pair them: d = a - b per user, interval mean(d) ± 1.96 · std(d) / sqrt(U).")
            if right == "tie" and got == "a":
                raise Mismatch(f"case '{name}': a positive mean difference is not enough; it must be larger than its noise. "
                               "Say 'tie' unless the paired 95% interval mean(d) ± 1.96 · std(d) / sqrt(U) excludes 0.")
            raise Mismatch(f"case '{name}': expected {right!r}, got {got!r}. 'a' when the whole paired interval of "
                           "mean(a - b) lies above 0, 'b' when it lies below 0, 'tie' when it contains 0.")

    report(run_check("Exercise 3 (is the difference real?)", trial,
                     "The paired interval sees differences that two separate intervals hide, and refuses ones that a mean invents."))
