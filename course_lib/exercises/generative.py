"""Checkers for notebook 16 (items as tokens: semantic IDs and generative retrieval).

* :func:`check_quantize_level` - one level of residual quantization: the nearest centroid of
  each residual, and what is left after subtracting it;
* :func:`check_next_token_mask` - the trie's mask: which tokens may follow a prefix so that
  the code still spells a real item.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.generative import CodeTrie, quantize_level
from .core import Mismatch, answered, call, expect, expect_close, report, run_check


def _as_tensor(value: object, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise Mismatch(f"{what} should be a torch.Tensor, got {type(value).__name__}.")
    return value


def check_quantize_level(student: Callable[[torch.Tensor, torch.Tensor], object]) -> None:
    """Check ``student(residuals (N, D), codebook (K, D)) -> (codes (N,), new residuals (N, D))``."""

    def trial() -> None:
        # worked case: the long centroid [4, 0] has the largest dot product with [1, 0.2], the short [1, 0] is nearest
        residuals = torch.tensor([[1.0, 0.2], [-2.0, 1.0]])
        codebook = torch.tensor([[4.0, 0.0], [1.0, 0.0], [-2.0, 1.5]])
        got = answered(call(student, residuals, codebook), "the codes and residuals")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Mismatch(f"return a pair (codes, new_residuals), got {type(got).__name__}.")
        codes, rest = (_as_tensor(v, name) for v, name in zip(got, ("codes", "new_residuals")))
        expect(codes.shape == (2,), f"codes should have shape (N,) = (2,), got {tuple(codes.shape)}.")
        expect(codes.tolist() != [0, 2], "that is the largest dot product; the nearest centroid has the smallest "
               "distance || r - C[k] || (a long centroid wins a dot product by length).")
        expect(codes.tolist() == [1, 2], f"the nearest centroids are [1, 2], got {codes.tolist()}.")
        expect(rest.shape == residuals.shape, f"new_residuals should have shape (N, D) = (2, 2), got {tuple(rest.shape)}.")
        expect(not torch.allclose(rest.float(), residuals), "new_residuals are unchanged: subtract each row's centroid.")
        expect(not torch.allclose(rest.float(), codebook[[1, 2]]),
               "that is the centroid itself (the reconstruction); return what is left: residuals - codebook[codes].")
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            residuals = torch.randn(12, 5, generator=g)
            codebook = torch.randn(6, 5, generator=g) * torch.rand(6, 1, generator=g) * 3  # centroids of varied length
            codes, rest = call(student, residuals, codebook)
            want_codes, want_rest = quantize_level(residuals, codebook)
            expect(torch.as_tensor(codes).long().tolist() == want_codes.tolist(),
                   f"random case {seed}: expected codes {want_codes.tolist()}, got {torch.as_tensor(codes).tolist()}.")
            expect_close(torch.as_tensor(rest).float(), want_rest, what=f"random case {seed}'s new residuals",
                         hint="new_residuals = residuals - codebook[codes].")

    report(run_check("Exercise 1 (one level of residual quantization)", trial,
                     "It matches course_lib.models.generative.quantize_level."))


def check_next_token_mask(student: Callable[[torch.Tensor, torch.Tensor, int], object]) -> None:
    """Check ``student(codes (I, C), prefix (l,), vocab_size) -> bool (vocab_size,)``: tokens that may follow."""

    codes = torch.tensor([[0, 1, 0], [0, 1, 1], [0, 2, 0], [1, 1, 0], [2, 0, 0], [2, 0, 1], [2, 3, 0]])

    def ask(prefix: list[int], vocab: int) -> torch.Tensor:
        got = _as_tensor(call(student, codes.clone(), torch.tensor(prefix, dtype=torch.long), vocab), "the mask")
        expect(got.shape == (vocab,), f"for prefix {prefix} the mask should have shape (vocab_size,) = ({vocab},), "
               f"got {tuple(got.shape)}.")
        expect(got.dtype == torch.bool, f"return a bool mask (True = allowed), got dtype {got.dtype}.")
        return got

    def trial() -> None:
        got = answered(call(student, codes.clone(), torch.tensor([0], dtype=torch.long), 4), "the mask")
        _as_tensor(got, "the mask")
        reference = CodeTrie(codes, (3, 4, 2))
        got = ask([0], 4)
        anywhere = torch.zeros(4, dtype=torch.bool).index_fill_(0, codes[:, 1], True)  # level-1 tokens of any item
        expect(got.tolist() != anywhere.tolist(),
               "that is every token used at level 1 by any item; only items whose code starts with the prefix count.")
        expect(got.tolist() == [False, True, True, False], f"after prefix [0] only 1 and 2 may follow, got {got.tolist()}.")
        got = ask([], 3)
        expect(got.tolist() == [True, True, True], f"with an empty prefix every first token in use is allowed, got {got.tolist()}.")
        got = ask([2, 1], 2)
        expect(not got.any(), "no item starts with [2, 1]: nothing may follow (an all-False mask). "
               "Compare the whole prefix, not only its last token.")
        for prefix, vocab in ([2, 0], 2), ([0, 1], 2), ([1], 4), ([2], 4):
            want = reference.next_token_mask(torch.tensor([prefix]))[0]
            got = ask(prefix, vocab)
            expect(got.tolist() == want.tolist(), f"after prefix {prefix}: expected {want.tolist()}, got {got.tolist()}.")

    report(run_check("Exercise 2 (the trie's next-token mask)", trial,
                     "It matches course_lib.models.generative.CodeTrie.next_token_mask."))
