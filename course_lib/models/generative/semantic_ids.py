"""Semantic IDs: an item as a short code of tokens, by residual k-means of its content vector.

    r_0 = x                                   the item's content vector (D,), e.g. a text embedding
    c_l = argmin_k || r_l - C_l[k] ||^2       level l's token: the nearest centroid of codebook C_l (K, D)
    r_{l+1} = r_l - C_l[c_l]                  what is left for the next level
    x_hat = sum_l C_l[c_l]                    the reconstruction from the code (c_0, ..., c_{L-1})

Each codebook is fitted by k-means on the residuals of the level above (Lloyd's algorithm
from a k-means++ start, seeded), so the first token says roughly *what kind* of item it is
and every later token refines it (TIGER: Rajput et al., NeurIPS 2023, use an RQ-VAE; residual
k-means is the same quantizer without the learned encoder). Items whose L tokens all agree
(a collision) get one more token, the **disambiguation** token 0, 1, 2, ... in item-id
order, so every item has a unique code of L + 1 tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def _check_vectors(x: object, name: str = "embeddings") -> Tensor:
    if not isinstance(x, Tensor) or x.ndim != 2 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float tensor (N, D), one content vector per item; got {got}.")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no item (N = 0): an empty catalogue has nothing to quantize.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contain NaN or infinite values.")
    return x


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    return value


def nearest_centroid(x: Tensor, centroids: Tensor) -> Tensor:
    """(N, D), (K, D) -> (N,) index of each row's nearest centroid (squared Euclidean; ties -> lowest index)."""
    distances = torch.cdist(x.double(), centroids.double()).pow(2)  # (N, K), float64 so ties do not depend on rounding
    return distances.argmin(dim=1)


def quantize_level(residuals: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """One level of residual quantization.

    Args:
        residuals: (N, D) what is left to encode.
        codebook: (K, D) this level's centroids.

    Returns:
        codes (N,) long, the nearest centroid of each row, and the new residuals
        ``residuals - codebook[codes]`` (N, D).
    """
    _check_vectors(residuals, "residuals")
    if not isinstance(codebook, Tensor) or codebook.ndim != 2 or codebook.shape[1] != residuals.shape[1]:
        got = tuple(codebook.shape) if isinstance(codebook, Tensor) else type(codebook).__name__
        raise ValueError(f"codebook must be (K, D = {residuals.shape[1]}), got {got}.")
    codes = nearest_centroid(residuals, codebook)  # (N,)
    return codes, residuals - codebook[codes]  # (N,), (N, D)


def kmeans(x: Tensor, k: int, *, iterations: int = 25, generator: torch.Generator) -> Tensor:
    """Lloyd's k-means from a k-means++ start; returns the centroids (k, D).

    Deterministic given ``generator``. A cluster that loses all its points keeps its centroid.
    """
    _check_vectors(x, "x")
    _positive_int(k, "k (the codebook size)")
    n = x.shape[0]
    tries = 2 + int(math.log(k))  # greedy k-means++ (as scikit-learn): the best of a few candidates per step
    first = int(torch.randint(n, (1,), generator=generator))
    centroids = [x[first]]
    closest = (x - x[first]).pow(2).sum(dim=1)  # (N,) squared distance to the nearest chosen centroid
    for _ in range(1, k):
        total = closest.sum()
        weights = closest / total if total > 0 else torch.full_like(closest, 1.0 / n)  # every point chosen: uniform
        picks = torch.multinomial(weights.float(), tries, replacement=True, generator=generator)  # (tries,)
        candidate = torch.minimum(closest[None], torch.cdist(x[picks], x).pow(2))  # (tries, N) if each were added
        best = int(candidate.sum(dim=1).argmin())
        centroids.append(x[picks[best]])
        closest = candidate[best]
    c = torch.stack(centroids)  # (k, D)
    for _ in range(iterations):
        assign = nearest_centroid(x, c)  # (N,)
        sums = torch.zeros_like(c).index_add_(0, assign, x)  # (k, D)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)  # (k,)
        updated = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)
        if torch.equal(updated, c):
            break
        c = updated
    return c


@dataclass(frozen=True, eq=False)  # holds tensors: compare fields explicitly
class ResidualQuantizer:
    """The fitted codebooks, one (K, D) tensor per level."""

    codebooks: tuple[Tensor, ...]  # level l's centroids (K, D)

    @property
    def levels(self) -> int:
        """L, tokens per code before disambiguation."""
        return len(self.codebooks)

    def encode(self, x: Tensor) -> Tensor:
        """(N, D) content vectors -> (N, L) codes, level by level on the residuals."""
        _check_vectors(x)
        if x.shape[1] != self.codebooks[0].shape[1]:
            raise ValueError(f"the codebooks are {self.codebooks[0].shape[1]}-dimensional; got vectors of size {x.shape[1]}.")
        codes, residual = [], x
        for codebook in self.codebooks:
            code, residual = quantize_level(residual, codebook)
            codes.append(code)
        return torch.stack(codes, dim=1)  # (N, L)

    def decode(self, codes: Tensor) -> Tensor:
        """(N, l) codes of the first l <= L levels -> (N, D) the sum of their centroids."""
        if not isinstance(codes, Tensor) or codes.ndim != 2 or codes.shape[1] > self.levels or codes.is_floating_point():
            got = f"{tuple(codes.shape)} {codes.dtype}" if isinstance(codes, Tensor) else type(codes).__name__
            raise ValueError(f"codes must be integer (N, l) with l <= L = {self.levels}, got {got}.")
        out = torch.zeros(codes.shape[0], self.codebooks[0].shape[1], dtype=self.codebooks[0].dtype)
        for level in range(codes.shape[1]):
            out = out + self.codebooks[level][codes[:, level]]
        return out

    def reconstruction_error(self, x: Tensor, levels: int | None = None) -> float:
        """Mean squared distance ``|| x - x_hat ||^2`` over rows, using the first ``levels`` levels (default all)."""
        levels = self.levels if levels is None else levels
        codes = self.encode(x)[:, :levels]
        return float((x - self.decode(codes)).pow(2).sum(dim=1).mean())


def fit_residual_quantizer(
    x: Tensor, *, levels: int, codebook_size: int, iterations: int = 25, seed: int = 0
) -> ResidualQuantizer:
    """Fit ``levels`` codebooks of ``codebook_size`` centroids each by k-means on successive residuals.

    Args:
        x: (N, D) content vectors of the items the codebooks are learned from.
        levels: L >= 1.
        codebook_size: K >= 1 centroids per level.
        iterations: Lloyd iterations per level (at most).
        seed: seeds the k-means++ starts.
    """
    _check_vectors(x)
    _positive_int(levels, "levels")
    _positive_int(codebook_size, "codebook_size")
    generator = torch.Generator().manual_seed(seed)
    codebooks, residual = [], x.float()
    for _ in range(levels):
        codebook = kmeans(residual, codebook_size, iterations=iterations, generator=generator)
        _, residual = quantize_level(residual, codebook)
        codebooks.append(codebook)
    return ResidualQuantizer(tuple(codebooks))


def add_disambiguation(codes: Tensor) -> Tensor:
    """Append a token that tells apart items with the same code: (N, L) -> (N, L + 1).

    The items sharing one code get 0, 1, 2, ... in row order; an item alone gets 0.
    """
    if not isinstance(codes, Tensor) or codes.ndim != 2 or codes.is_floating_point() or codes.shape[0] == 0:
        got = f"{tuple(codes.shape)} {codes.dtype}" if isinstance(codes, Tensor) else type(codes).__name__
        raise ValueError(f"codes must be a non-empty integer tensor (N, L), got {got}.")
    _, group = torch.unique(codes, dim=0, return_inverse=True)  # (N,) which distinct code each row has
    extra = torch.zeros(codes.shape[0], dtype=torch.long)
    seen: dict[int, int] = {}
    for row, g in enumerate(group.tolist()):
        extra[row] = seen.get(g, 0)
        seen[g] = extra[row].item() + 1
    return torch.cat([codes.long(), extra[:, None]], dim=1)


@dataclass(frozen=True, eq=False)
class CodeStats:
    """How a code uses its tokens."""

    collision_rate: float  # share of items whose L-token code (before disambiguation) another item also has
    distinct_codes: int  # distinct L-token codes
    used_per_level: tuple[int, ...]  # distinct tokens used at each level (of K)
    max_disambiguation: int  # the largest disambiguation token + 1 (the size of that level)


def code_stats(codes: Tensor) -> CodeStats:
    """Collision rate and codebook usage of codes (N, L) before disambiguation."""
    if not isinstance(codes, Tensor) or codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError("codes must be a non-empty (N, L) tensor.")
    _, group, counts = torch.unique(codes, dim=0, return_inverse=True, return_counts=True)
    return CodeStats(
        collision_rate=float((counts[group] > 1).double().mean()),
        distinct_codes=int(counts.numel()),
        used_per_level=tuple(int(codes[:, level].unique().numel()) for level in range(codes.shape[1])),
        max_disambiguation=int(counts.max()),
    )
