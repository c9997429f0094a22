"""Checkers for notebook 11 (pretrained language models as item encoders).

* :func:`check_mean_pool` - a sentence embedding as the mean of the token vectors over the
  real tokens (the attention mask leaves the padding out);
* :func:`check_nearest_neighbours` - the k most cosine-similar items to one item.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..text_encoder import mean_pool
from .core import Mismatch, answered, call, expect, expect_close, report, run_check


def _pool_case(seed: int, *, n: int = 3, length: int = 6, dim: int = 5):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, length, dim, generator=g)  # (N, T, Dt)
    lengths = torch.tensor([length, 3, 1])[:n]
    attention_mask = (torch.arange(length)[None, :] < lengths[:, None]).long()  # (N, T), 1 = real token
    hidden[attention_mask == 0] += 100.0  # padding vectors far away: a plain mean is visibly wrong
    return hidden, attention_mask


def check_mean_pool(student: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``student(hidden (N, T, Dt), attention_mask (N, T) of 0/1) -> (N, Dt)``."""

    def trial() -> None:
        for seed in range(3):
            hidden, attention_mask = _pool_case(seed)
            got = answered(call(student, hidden, attention_mask), "the pooled vectors")
            if not isinstance(got, torch.Tensor) or got.shape != hidden.shape[::2]:
                got_shape = getattr(got, "shape", type(got).__name__)
                raise Mismatch(f"return a tensor of shape (N, Dt) = {tuple(hidden.shape[::2])}, got {got_shape}.")
            expect(
                not torch.allclose(got, hidden.mean(dim=1), atol=1e-3),
                "that is the mean over every position, padding included; weight each token by attention_mask.",
            )
            expect_close(
                got, mean_pool(hidden, attention_mask), what="the masked mean",
                hint="m = attention_mask[..., None].float(); (hidden * m).sum(1) / m.sum(1) "
                "(divide by the number of real tokens, not by T).",
            )

    report(run_check("Exercise 1 (mean pooling with an attention mask)", trial, "It matches course_lib.text_encoder.mean_pool."))


def _reference_neighbours(embeddings: torch.Tensor, query: int, k: int) -> torch.Tensor:
    similarity = F.normalize(embeddings, dim=-1) @ F.normalize(embeddings[query], dim=-1)  # (N,)
    similarity[query] = -float("inf")  # never the item itself
    return similarity.topk(k).indices


def check_nearest_neighbours(student: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """Check ``student(embeddings (N, Dt), query, k) -> (k,)`` indices, most cosine-similar first, query excluded."""

    def trial() -> None:
        # worked case: item 0 points along x; item 2 is long but at 45 degrees, item 1 short and almost along x
        embeddings = torch.tensor([[1.0, 0.0], [0.1, 0.01], [5.0, 5.0], [-1.0, 0.2]])
        got = answered(call(student, embeddings, 0, 2), "the neighbours")
        got = torch.as_tensor(got).flatten().long()
        expect(got.numel() == 2, f"return k = 2 indices, got {got.numel()}.")
        expect(0 not in got.tolist(), "leave the query item itself out (its similarity with itself is 1).")
        expect(
            got.tolist() != [2, 1],
            "that is the dot-product order: the long vector 2 wins by length. Normalise first (cosine similarity).",
        )
        expect(got.tolist() == [1, 2], f"expected [1, 2] (cosine 0.995, then 0.707), got {got.tolist()}.")
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            embeddings = torch.randn(20, 6, generator=g) * torch.rand(20, 1, generator=g) * 5  # varied lengths
            got = torch.as_tensor(call(student, embeddings, seed, 4)).flatten().long()
            expected = _reference_neighbours(embeddings, seed, 4)
            expect(
                got.tolist() == expected.tolist(),
                f"for random vectors, item {seed}: expected {expected.tolist()}, got {got.tolist()} "
                "(most similar first; cosine = dot product of the normalised vectors).",
            )

    report(run_check("Exercise 2 (cosine nearest neighbours)", trial, "These are the neighbour lists printed above."))
