"""Checkers for notebook 04 (multi-head self-attention).

Each ``check_*`` takes the student's function, prints a pass, a hint or "not answered
yet", and returns None; it never raises.

* Exercise 1, :func:`check_wrong_view_source`: where does ``x.view(B, H, L, Dh)`` (the
  wrong split) take each number from? Memory-layout arithmetic, checked against the real view.
* Exercise 2, :func:`check_longest_history`: the longest history whose attention weights fit a
  memory budget.
* Exercise 3, :func:`check_genre_only_projection`: design a single head that attends by genre
  and ignores era, checked by what the head does on catalogues built by the checker.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..layers.multi_head import MultiHeadAttention
from .core import Mismatch, answered, call, expect, expect_close, number, report, run_check

__all__ = [
    "check_genre_only_projection",
    "check_longest_history",
    "check_wrong_view_source",
]

# ---------------------------------------------------------------------------------------------
# Exercise 1: the wrong view

VIEW_SHAPES = ((3, 2, 3), (5, 4, 2), (4, 2, 4), (2, 3, 2), (6, 3, 1), (1, 2, 5))  # (L, H, Dh) tried


def _index_pair(value: object, what: str) -> tuple[int, int]:
    """``value`` read as a (position, feature) pair of integers, or a Mismatch naming what came back."""
    answered(value, what)
    if isinstance(value, Tensor) and value.numel() == 2:
        value = tuple(value.flatten().tolist())
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise Mismatch(f"{what} should be a pair (position, feature), got {type(value).__name__} {value!r:.60}.")
    pair = []
    for part, name in zip(value, ("position", "feature")):
        part = number(part, f"the {name} in {what}")
        if part != int(part):
            raise Mismatch(f"the {name} in {what} should be a whole number (an index), got {part}.")
        pair.append(int(part))
    return pair[0], pair[1]


def check_wrong_view_source(fn: Callable[[int, int, int, int, int, int], tuple[int, int]] | None) -> None:
    """Check ``fn(h, l, e, length, n_heads, d_head) -> (position, feature)``.

    For ``x`` of shape (B, L, D) with D = H * Dh, the entry ``[b, h, l, e]`` of
    ``x.view(B, H, L, Dh)`` is ``x[b, position, feature]``. Checked against the real view of
    ``torch.arange`` for every (h, l, e) of several shapes.
    """

    def trial() -> None:
        answered(fn, "wrong_view_source")
        for length, n_heads, d_head in VIEW_SHAPES:
            d_model = n_heads * d_head
            x = torch.arange(length * d_model).view(1, length, d_model)  # (1, L, D): entry = position*D + feature
            wrong = x.view(1, n_heads, length, d_head)  # (1, H, L, Dh): the wrong split
            shape = f"L={length}, H={n_heads}, Dh={d_head} (so D={d_model})"
            answers, right, right_split, rows_of_d_head = {}, {}, {}, {}  # (h, l, e) -> (position, feature)
            for h in range(n_heads):
                for l in range(length):  # noqa: E741 - l is the course's name for a position
                    for e in range(d_head):
                        what = f"wrong_view_source(h={h}, l={l}, e={e}) with {shape}"
                        answers[h, l, e] = _index_pair(call(fn, h, l, e, length, n_heads, d_head), what)
                        flat = int(wrong[0, h, l, e])  # how many numbers come before it in memory
                        right[h, l, e] = divmod(flat, d_model)
                        right_split[h, l, e] = (l, h * d_head + e)
                        rows_of_d_head[h, l, e] = divmod(flat, d_head)
            if answers == right:
                continue
            (h, l, e), (position, feature) = next((k, v) for k, v in answers.items() if v != right[k])  # noqa: E741
            what = f"wrong_view_source(h={h}, l={l}, e={e}) with {shape}"
            if answers == right_split:
                raise Mismatch(
                    f"{what}: you answered ({position}, {feature}), where the RIGHT split "
                    "(view(B, L, H, Dh).transpose(1, 2)) takes it from. view(B, H, L, Dh) moves "
                    "nothing: it reads x's numbers in memory order and only regroups them. "
                    "Count how many numbers come before [h, l, e] in the view."
                )
            if answers == {k: v[::-1] for k, v in right.items()}:
                raise Mismatch(
                    f"{what}: position and feature are swapped; return (position, feature), "
                    "the row of x first, then the column."
                )
            if answers == rows_of_d_head:
                raise Mismatch(
                    f"{what}: you cut the flat index into rows of Dh = {d_head} numbers, but a "
                    f"row of x (one position) holds all D = H * Dh = {d_model} features."
                )
            if not (0 <= position < length and 0 <= feature < d_model):
                raise Mismatch(
                    f"{what}: ({position}, {feature}) is outside x, which has {length} positions "
                    f"and {d_model} features."
                )
            raise Mismatch(
                f"{what}: you answered ({position}, {feature}); x there holds "
                f"{int(x[0, position, feature])}, the view holds {int(wrong[0, h, l, e])}. A view keeps "
                "memory order: count the numbers before [h, l, e] in the view (a head is L*Dh numbers, "
                "a row of the view Dh), then find the (position, feature) of x with as many "
                "before it (a row of x is D numbers)."
            )

    report(run_check("Exercise 1 (the wrong view)", trial,
                     "view(B, H, L, Dh) fills head 0 with the first positions' features: positions leak into heads."))


# ---------------------------------------------------------------------------------------------
# Exercise 2: the longest history that fits

BYTES_FP32 = 4  # bytes of one float32 number
HISTORY_BUDGETS = ((2**30, 8, 1), (2**30, 2, 16), (8 * 2**30, 8, 256), (10**9, 2, 64), (1000, 1, 1), (4095, 1, 1))
# (budget in bytes, H, B) tried


def longest_history_reference(budget_bytes: int, n_heads: int, batch_size: int) -> int:
    """Largest L whose weights B * H * L^2 (float32) take at most ``budget_bytes``."""
    return math.isqrt(budget_bytes // (BYTES_FP32 * n_heads * batch_size))


def check_longest_history(fn: Callable[[int, int, int], int] | None) -> None:
    """Check ``fn(budget_bytes, n_heads, batch_size) -> L``: the largest history length whose
    attention weights for one layer, B * H * L * L float32 numbers, fit in ``budget_bytes``."""

    def trial() -> None:
        answered(fn, "longest_history")
        for budget, n_heads, batch in HISTORY_BUDGETS:
            what = f"longest_history({budget:,}, n_heads={n_heads}, batch_size={batch})"
            got = number(answered(call(fn, budget, n_heads, batch), f"the value returned by {what}"), what)
            expect(got == int(got), f"{what} = {got}: a history length is a whole number of items.")
            got = int(got)
            right = longest_history_reference(budget, n_heads, batch)
            if got == right:
                continue
            per_square = BYTES_FP32 * n_heads * batch  # bytes of the weights = per_square * L * L
            if got > right:
                if got == math.isqrt(budget // (n_heads * batch)):
                    raise Mismatch(f"{what} = {got}: you counted numbers, not bytes. A float32 takes 4 bytes.")
                if got == math.isqrt(budget // (BYTES_FP32 * batch)) and n_heads > 1:
                    raise Mismatch(f"{what} = {got}: every one of the H = {n_heads} heads keeps its own L x L "
                                   "weights; multiply by H.")
                if got == math.isqrt(budget // (BYTES_FP32 * n_heads)) and batch > 1:
                    raise Mismatch(f"{what} = {got}: every one of the B = {batch} histories in the batch has its "
                                   "own weights; multiply by B.")
                raise Mismatch(f"{what} = {got}: the weights would take B*H*L*L*4 = {per_square * got * got:,} bytes, more than "
                               "the budget.")
            raise Mismatch(f"{what} = {got}: L = {got + 1} still fits ({per_square * (got + 1) ** 2:,} bytes <= budget); "
                           "give the largest L that fits (round the square root down, not further).")

    report(run_check("Exercise 2 (the longest history that fits)", trial,
                     "Memory grows with L²: a budget 4 times larger buys a history only 2 times longer."))


# ---------------------------------------------------------------------------------------------
# Exercise 3: one head that attends by genre only

GENRE_FEATURES = range(0, 4)  # features that encode the genre in the notebook's films
ERA_FEATURES = range(4, 8)  # features that encode the era
GENRE_D_MODEL = 8  # D of the notebook's films
SHARPNESS_TRIED = (1.0, 2.0, 3.0)  # sharpness values the checker passes to the student's function


def _genre_era_data(seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Films with a genre (one of features 0-3) and an era (one of features 4-7) plus noise.

    Returns:
        histories x (B, L, D), genre (B, L) and era (B, L) of each watched film.
    """
    generator = torch.Generator().manual_seed(seed)
    n_items, batch, length = 16, 6, 8
    genre = torch.randint(0, 4, (n_items,), generator=generator)  # feature index 0..3
    era = torch.randint(4, 8, (n_items,), generator=generator)  # feature index 4..7
    items = 0.1 * torch.randn(n_items, GENRE_D_MODEL, generator=generator)  # (I, D)
    items[torch.arange(n_items), genre] += 1.0
    items[torch.arange(n_items), era] += 1.0
    histories = torch.stack([torch.randperm(n_items, generator=generator)[:length] for _ in range(batch)])  # (B, L)
    return items[histories], genre[histories], era[histories]


def _one_head_weights(projection: Tensor, x: Tensor) -> Tensor:
    """Weights (B, L, L) of a 1-head MultiHeadAttention with W_Q = W_K = ``projection``, W_V = W_O = I."""
    layer = MultiHeadAttention(GENRE_D_MODEL, 1).eval()
    with torch.no_grad():
        for proj, weight in ((layer.q_proj, projection), (layer.k_proj, projection),
                             (layer.v_proj, torch.eye(GENRE_D_MODEL)), (layer.out_proj, torch.eye(GENRE_D_MODEL))):
            proj.weight.copy_(weight.T)  # nn.Linear computes x @ weight.T
            proj.bias.zero_()
        _, weights = layer(query=x, return_attention=True)  # (B, 1, L, L)
    return weights[:, 0]  # (B, L, L)


def _share(weights: Tensor, label: Tensor) -> float:
    """Mean over queries of the attention mass on keys with the same ``label`` as the query."""
    same = label[:, :, None] == label[:, None, :]  # (B, L, L)
    return (weights * same).sum(-1).mean().item()


def genre_only_reference(sharpness: float) -> Tensor:
    """The reference answer of Exercise 3: ``sharpness`` on the genre features, 0 on the era features."""
    return torch.diag(torch.tensor([sharpness] * len(GENRE_FEATURES) + [0.0] * len(ERA_FEATURES)))  # (D, D)


def check_genre_only_projection(fn: Callable[[float], Tensor] | None) -> None:
    """Check ``fn(sharpness) -> (D, D)``: W_Q = W_K of ONE head (H = 1, Dh = D = 8) that attends by genre only.

    The head is built as a 1-head ``MultiHeadAttention`` (W_V = W_O = I, no biases) and run on
    catalogues drawn by the checker. It must ignore the era features (its weights do not change
    when every film's era is redrawn), attend to same-genre films, and at ``sharpness`` s give the
    same weights as s on each genre feature.
    """

    def trial() -> None:
        answered(fn, "genre_only_projection")
        for sharpness in SHARPNESS_TRIED:
            what = f"genre_only_projection({sharpness})"
            got = answered(call(fn, sharpness), f"the value returned by {what}")
            expect(isinstance(got, Tensor), f"{what} should return a torch.Tensor (D, D), got {type(got).__name__}.")
            expect(
                tuple(got.shape) == (GENRE_D_MODEL, GENRE_D_MODEL),
                f"{what} has shape {tuple(got.shape)}; W_Q of one head with H = 1 maps all D = "
                f"{GENRE_D_MODEL} features to Dh = D = {GENRE_D_MODEL}: shape ({GENRE_D_MODEL}, {GENRE_D_MODEL}).",
            )
            projection = got.detach().to("cpu", torch.float32)
            expect(bool(torch.isfinite(projection).all()), f"{what} contains NaN or inf.")
            for seed in range(3):
                x, genre, era = _genre_era_data(seed)
                weights = _one_head_weights(projection, x)  # (B, L, L)
                x_new_era, x_new_genre = x.clone(), x.clone()  # (B, L, D): other films' eras, or genres
                x_new_era[..., ERA_FEATURES.start:] = x[..., ERA_FEATURES.start:].roll(1, dims=1)
                x_new_genre[..., :ERA_FEATURES.start] = x[..., :ERA_FEATURES.start].roll(1, dims=1)
                sees_era = not torch.allclose(_one_head_weights(projection, x_new_era), weights, atol=1e-5)
                sees_genre = not torch.allclose(_one_head_weights(projection, x_new_genre), weights, atol=1e-5)
                genre_share, era_share = _share(weights, genre), _share(weights, era)
                reference = _one_head_weights(genre_only_reference(sharpness), x)
                ref_genre, ref_era = _share(reference, genre), _share(reference, era)
                uniform_genre = _share(torch.full_like(weights, 1.0 / weights.shape[-1]), genre)
                shares = (f"On the checker's films your head puts {genre_share:.2f} of its mass on same-genre "
                          f"and {era_share:.2f} on same-era films; a genre-only head puts {ref_genre:.2f} and "
                          f"{ref_era:.2f}, uniform attention {uniform_genre:.2f} on same-genre films.")
                if sees_era and sees_genre and torch.allclose(projection.abs(), sharpness * torch.eye(GENRE_D_MODEL)):
                    raise Mismatch(
                        f"{what}: s * I is the single head of section 6: it compares genre AND era at once. "
                        f"{shares} Keep the sharpness on the genre features 0-3 and put 0 on the era features 4-7."
                    )
                if sees_era and not sees_genre:
                    raise Mismatch(
                        f"{what}: your head's weights change with the films' eras but not with their genres: "
                        f"your weight sits on the era features 4-7; the genre lives in features 0-3. {shares}"
                    )
                if sees_era:
                    raise Mismatch(
                        f"{what}: the head's weights change when only the films' eras change, so it still "
                        f"looks at features 4-7. {shares} Rows 4-7 of W_Q and W_K must be 0."
                    )
                expect(
                    sees_genre,
                    f"{what}: the head ignores the era but the genre too, so it attends uniformly. {shares} "
                    "Put the sharpness on the genre features 0-3.",
                )
                expect_close(
                    weights,
                    reference,
                    what=f"the weights of your head for {what}",
                    hint=f"{shares} Use exactly the sharpness s on each genre feature (the score of films "
                    "i and j is then s² (genre_i · genre_j) / √D), as W_Q = W_K = s·I did for both features.",
                )

    report(run_check("Exercise 3 (a genre-only head)", trial,
                     "One head that wants genre alone must be told to ignore era; two heads each get their own slice."))
