"""Checkers for notebook 13 (the capstone).

* :func:`check_candidate_over_interests` - the candidate's attention over K + 1 interests and its
  log-sum-exp score, for every item of the catalogue at once;
* :func:`check_explanation_share` - the share of an explanation that lies on history events of
  the target's true interest, and the uniform baseline.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .core import Mismatch, answered, call, expect, expect_close, number, report, run_check


def _interest_case(seed: int, *, batch: int = 3, k1: int = 3, dim: int = 5, items: int = 7):
    g = torch.Generator().manual_seed(seed)
    interests = 2 * torch.randn(batch, k1, dim, generator=g)  # (B, K + 1, D)
    vectors = torch.randn(items, dim, generator=g)  # (I, D)
    logits = interests @ vectors.T  # (B, K + 1, I)
    return interests, vectors, torch.logsumexp(logits, dim=1), torch.softmax(logits, dim=1).transpose(1, 2)


def check_candidate_over_interests(
    student: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
) -> None:
    """Check ``student(interests (B, K + 1, D), items (I, D)) -> (scores (B, I), weights (B, I, K + 1))``."""

    def trial() -> None:
        for seed, k1 in ((0, 3), (1, 2), (2, 5)):
            interests, items, scores, weights = _interest_case(seed, k1=k1)
            answer = answered(call(student, interests, items), "(scores, weights)")
            expect(isinstance(answer, tuple) and len(answer) == 2, "return two tensors: (scores (B, I), weights (B, I, K + 1)).")
            got_scores, got_weights = answer
            if isinstance(got_weights, torch.Tensor) and got_weights.shape == weights.shape:
                total = got_weights.detach().sum(-1)
                if not torch.allclose(total, torch.ones_like(total), atol=1e-4):
                    raise Mismatch(
                        "each candidate's weights must sum to 1 over the K + 1 interests (the last axis of weights); "
                        "a softmax over the items instead would compare candidates with each other."
                    )
            expect_close(
                got_weights, weights, what="weights",
                hint="a_k(c) = softmax over k of v_k . f(c): logits (B, K + 1, I), softmax(dim=1), then .transpose(1, 2).",
            )
            expect_close(
                got_scores, scores, what="scores",
                hint="s(c) = log sum_k exp(v_k . f(c)): torch.logsumexp(logits, dim=1), a smooth max over the interests.",
            )

    report(run_check(
        "Exercise 1 (the candidate reads the interests)", trial,
        "The same as CapstoneRecommender.interest_item_scores / interest_weights.",
    ))


def _share_case(seed: int):
    rng = np.random.default_rng(seed)
    batch, length = 4, 6
    interests = rng.integers(-1, 3, (batch, length))  # -1 = a random (noise) event
    interests[1, :2] = -2  # padding
    interests[2, :5] = -2
    weights = rng.random((batch, length)) * (interests != -2)
    weights /= weights.sum(1, keepdims=True)
    target = rng.integers(0, 3, batch)
    same = interests == target[:, None]
    real = interests != -2
    return weights, interests, target, float((weights * same).sum(1).mean()), float((same.sum(1) / real.sum(1)).mean())


def check_explanation_share(student: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, float]]) -> None:
    """Check ``student(weights (B, L), interests (B, L), target (B,)) -> (mean share, mean uniform share)``.

    Padding slots have interest -2; every row has at least one real event.
    """

    def trial() -> None:
        for seed in (0, 1, 2):
            weights, interests, target, share, uniform = _share_case(seed)
            answer = answered(call(student, weights, interests, target), "(share, uniform)")
            expect(isinstance(answer, tuple) and len(answer) == 2, "return two numbers: (mean share, mean uniform share).")
            got_share, got_uniform = (number(x, "share and uniform") for x in answer)
            expect(
                abs(got_share - share) < 1e-6,
                f"the mean share should be {share:.4f}, got {got_share:.4f}: sum the weights of the events whose interest "
                "equals the target's, then average over users.",
            )
            expect(
                abs(got_uniform - uniform) < 1e-6,
                f"the uniform baseline should be {uniform:.4f}, got {got_uniform:.4f}: per user, (events of the target's interest) / "
                "(real events, padding -2 excluded), then average.",
            )

    report(run_check("Exercise 2 (is the explanation right?)", trial, "It matches course_lib.explain.interest_alignment."))
