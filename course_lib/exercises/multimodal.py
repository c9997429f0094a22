"""Checkers for notebook 12 (multimodal items).

* :func:`check_patchify` - cut images into flattened patches in the order of ``F.unfold``;
* :func:`check_modality_weights` - gated fusion's softmax over the *modality* axis (not
  over an axis of size 1, where every weight is 1).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .core import Mismatch, answered, call, expect, expect_close, report, run_check


def check_patchify(student_patchify: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``student_patchify(images (B, C, S, S), patch_size) -> (B, P, C·p·p)``."""

    def trial() -> None:
        # worked case: one 1-channel 4 x 4 image with pixels 0..15, patches of 2 x 2
        image = torch.arange(16.0).reshape(1, 1, 4, 4)
        got = answered(call(student_patchify, image, 2), "the patches")
        expected = torch.tensor([[[0.0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]])
        expect_close(
            got, expected, what="patchify(pixels 0..15 as a 4 x 4 image, 2)",
            hint="patch 0 is the top-left 2 x 2 block [0, 1, 4, 5], patch 1 the block to its right; "
            "reshape to (B, C, S/p, p, S/p, p), permute to (B, S/p, S/p, C, p, p), then reshape.",
        )
        for seed, (b, c, s, p) in enumerate([(2, 3, 24, 8), (3, 3, 24, 6), (1, 2, 12, 4), (2, 1, 6, 3)]):
            images = torch.randn(b, c, s, s, generator=torch.Generator().manual_seed(seed))
            reference = F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)  # (B, P, C·p·p)
            expect_close(
                call(student_patchify, images, p), reference, what=f"patchify of a {(b, c, s, s)} batch with p = {p}",
                hint="inside a patch, order the features (channel, row, column), as F.unfold does.",
            )

    report(run_check("Exercise 1 (patchify)", trial, "It matches torch.nn.functional.unfold."))


def check_modality_weights(student: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``student(gate_scores (B, M, 1)) -> (B, M)`` weights summing to 1 over the modalities."""

    def trial() -> None:
        for seed, (batch, modalities) in enumerate([(3, 4), (5, 2), (1, 3)]):
            scores = torch.randn(batch, modalities, 1, generator=torch.Generator().manual_seed(seed)) * 2
            got = answered(call(student, scores), "the modality weights")
            if not isinstance(got, torch.Tensor):
                raise Mismatch(f"return a tensor of shape (B, M) = {(batch, modalities)}, got {type(got).__name__}.")
            if tuple(got.shape) == (batch, modalities, 1) and torch.allclose(got, torch.ones_like(got)):
                raise Mismatch(
                    "every weight is 1: the softmax ran over the last axis, of size 1. "
                    "Squeeze it first (scores.squeeze(-1)) and take the softmax over the M modalities."
                )
            expect(
                tuple(got.shape) == (batch, modalities),
                f"return one weight per item and modality, shape (B, M) = {(batch, modalities)}; got {tuple(got.shape)}.",
            )
            expect_close(
                got.sum(dim=-1), torch.ones(batch), what="the sum of each item's weights over the modalities",
                hint="the weights of one item must sum to 1 over its M modalities: softmax(..., dim=-1) on (B, M).",
            )
            expect_close(
                got, torch.softmax(scores.squeeze(-1), dim=-1), what="the modality weights",
                hint="a softmax of the scores over the modality axis: exp(s_m) / sum_m' exp(s_m').",
            )

    report(run_check("Exercise 2 (softmax over the modality axis)", trial, "Each item's weights sum to 1 over its modalities."))
