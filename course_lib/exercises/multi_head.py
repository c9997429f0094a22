"""Checkers for notebook 04 (multi-head self-attention).

Each ``check_*`` takes the student's function, prints a pass, a hint or "not answered
yet", and returns None; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..attention import causal_mask, combine_masks, padding_mask
from ..layers.multi_head import merge_heads, split_heads
from .core import Mismatch, answered, call, expect, expect_close, report, run_check

__all__ = ["check_merge_heads", "check_split_heads", "check_torch_attn_mask"]


def check_split_heads(fn: Callable[[Tensor, int], Tensor] | None) -> None:
    """Check ``fn(x, n_heads)``: (B, L, D) -> (B, H, L, Dh), head h = features h*Dh..(h+1)*Dh-1."""

    def trial() -> None:
        answered(fn, "split_heads")
        generator = torch.Generator().manual_seed(0)
        for shape, n_heads in (((2, 5, 12), 3), ((1, 4, 8), 2), ((3, 1, 6), 6)):
            x = torch.randn(shape, generator=generator)
            expected = split_heads(x, n_heads)
            got = call(fn, x.clone(), n_heads)
            answered(got, "the value returned by split_heads")
            if isinstance(got, Tensor) and got.shape == expected.shape and not torch.allclose(got, expected):
                batch, length, d_model = shape
                wrong = x.reshape(batch, n_heads, length, d_model // n_heads)
                if torch.allclose(got, wrong):
                    raise Mismatch(
                        "a direct reshape to (B, H, L, Dh) mixes positions into heads. First "
                        "view as (B, L, H, Dh) (each position's D features cut into H slices), "
                        "then swap the L and H axes with .transpose(1, 2)."
                    )
            expect_close(
                got,
                expected,
                what=f"split_heads(x of shape {shape}, n_heads={n_heads})",
                hint="Head h must hold features h*Dh .. (h+1)*Dh-1 of every position: "
                "x.view(B, L, H, Dh).transpose(1, 2).",
            )

    report(run_check("Exercise 1 (split heads)", trial, "Each head now sees its own Dh-dimensional slice."))


def check_merge_heads(fn: Callable[[Tensor], Tensor] | None) -> None:
    """Check ``fn(x)``: (B, H, L, Dh) -> (B, L, H*Dh), the exact inverse of split_heads."""

    def trial() -> None:
        answered(fn, "merge_heads")
        generator = torch.Generator().manual_seed(1)
        for shape in ((2, 3, 5, 4), (1, 2, 4, 4), (3, 6, 1, 1)):
            heads = torch.randn(shape, generator=generator)
            got = call(fn, heads.clone())
            expect_close(
                got,
                merge_heads(heads),
                what=f"merge_heads(x of shape {shape})",
                hint="Swap H and L back with .transpose(1, 2) to get (B, L, H, Dh), then "
                ".reshape(B, L, H * Dh) (.view fails on the transposed, non-contiguous tensor).",
            )
        x = torch.randn(2, 7, 12, generator=generator)
        expect_close(call(fn, split_heads(x, 4)), x, what="merge_heads(split_heads(x, 4))",
                     hint="merging must undo splitting exactly.")

    report(run_check("Exercise 2 (merge heads)", trial, "split_heads and merge_heads are inverses."))


def check_torch_attn_mask(fn: Callable[[Tensor], Tensor] | None) -> None:
    """Check ``fn(attn_mask)``: our mask (True = may attend) -> torch's boolean attn_mask.

    ``torch.nn.MultiheadAttention`` reads a boolean ``attn_mask`` (and ``key_padding_mask``)
    the other way round: True = NOT allowed.
    """

    def trial() -> None:
        answered(fn, "to_torch_mask")
        items = torch.tensor([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]])  # 0 = padding
        ours = combine_masks(causal_mask(5), padding_mask(items))[:, 0]  # (B, L, L)
        for mask in (causal_mask(4), ours):
            got = answered(call(fn, mask.clone()), "the value returned by to_torch_mask")
            expect(isinstance(got, Tensor), f"return a torch.Tensor, got {type(got).__name__}.")
            expect(
                got.dtype == torch.bool,
                f"return a boolean tensor (got {got.dtype}); torch would read a float mask as "
                "numbers to add to the scores.",
            )
            expect(got.shape == mask.shape, f"keep the shape {tuple(mask.shape)}, got {tuple(got.shape)}.")
            expect(
                not torch.equal(got, mask),
                "this is our own convention unchanged. For torch, True means 'NOT allowed'.",
            )
            expect(torch.equal(got, ~mask), "every entry must flip: True (may attend) -> False, and back.")

    report(run_check("Exercise 3 (mask convention at the torch boundary)", trial,
                     "Convert exactly once, where our code meets torch's."))
