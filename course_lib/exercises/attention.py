"""Checkers for notebook 03 (scaled dot-product attention and masks).

Each ``check_*`` prints one line (pass, hint, or "not answered yet") and returns None;
it never raises, so an unanswered exercise does not stop the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..attention import causal_mask, masked_softmax, padding_mask
from ..constants import PAD_ID
from .core import Mismatch, answered, call, expect, expect_close, forbid, report, run_check

__all__ = [
    "check_causal_padding_mask",
    "check_masked_attention",
    "check_newest_positions",
    "causal_padding_mask_trial",
    "masked_attention_trial",
    "newest_positions_trial",
]

CAUSAL_PADDING_EXERCISE = "Exercise 1 (causal + padding mask)"
NEWEST_POSITIONS_EXERCISE = "Exercise 2 (positions counted from the newest item)"
MASKED_ATTENTION_EXERCISE = "Exercise 3 (masked attention)"


# --- helpers ---------------------------------------------------------------------------


def _close(a: Tensor, b: Tensor, atol: float = 1e-5) -> bool:
    """Same shape and close values (NaN never counts as close)."""
    return tuple(a.shape) == tuple(b.shape) and bool(
        torch.allclose(a.detach().to("cpu", torch.float64), b.to(torch.float64), atol=atol, rtol=1e-4)
    )


def _reference_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """Masked attention with zero weights/output on fully masked rows, at a given score scale."""
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk)
    weights = masked_softmax(scores, attn_mask)  # (..., Lq, Lk)
    return weights @ v, weights  # (..., Lq, Dv), (..., Lq, Lk)


# --- exercise 3: masked attention --------------------------------------------------------


def _attention_cases() -> list[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """(q, k, v, attn_mask) cases; every case has partly and fully masked query rows."""
    generator = torch.Generator().manual_seed(3)
    cases = []
    # batched (B=2, Lq=3, Lk=5, D=4, Dv=3) with a (B, Lq, Lk) mask
    q = torch.randn(2, 3, 4, generator=generator) * 2
    k = torch.randn(2, 5, 4, generator=generator) * 2
    v = torch.randn(2, 5, 3, generator=generator)
    mask = torch.tensor(
        [
            [[True, True, True, True, True], [True, True, False, False, False], [False] * 5],
            [[False, True, False, True, False], [False] * 5, [True, False, False, False, False]],
        ]
    )
    cases.append((q, k, v, mask))
    # padded histories (B=3, L=4, D=8) with a broadcast (B, 1, L) key mask: the last
    # history is empty, so all of its rows are fully masked
    items = torch.tensor([[5, 2, 7, 1], [PAD_ID, PAD_ID, 3, 9], [PAD_ID] * 4])
    x = torch.randn(3, 4, 8, generator=generator)
    cases.append((x, x.clone(), x.clone(), padding_mask(items)[:, 0]))  # mask (B, 1, L)
    # no batch dimension: (Lq=4, D=16) against (Lk=6, D=16), a (Lq, Lk) mask
    q = torch.randn(4, 16, generator=generator)
    k = torch.randn(6, 16, generator=generator)
    v = torch.randn(6, 2, generator=generator)
    mask = torch.rand(4, 6, generator=generator) > 0.4
    mask[0] = False
    mask[1, 0] = True
    cases.append((q, k, v, mask))
    return cases


def _call_attention(fn: Callable, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    inputs = (q, k, v, mask)
    before = [x.clone() for x in inputs]
    result = answered(call(fn, q, k, v, mask), "the result")
    expect(
        all(torch.equal(x, b) for x, b in zip(inputs, before)),
        "your function changed its inputs in place (e.g. `scores.masked_fill_` on a view of q, "
        "or `attn_mask.logical_not_()`); compute new tensors instead.",
    )
    if isinstance(result, Tensor):
        raise Mismatch(
            "you returned one tensor; return the pair `(output, weights)` so that the caller "
            "can look at (and draw) the weights."
        )
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Mismatch(f"return the pair `(output, weights)`, got {type(result).__name__}.")
    output, weights = (answered(x, "output and weights") for x in result)
    for name, x in (("output", output), ("weights", weights)):
        if not isinstance(x, Tensor):
            raise Mismatch(f"{name} should be a torch.Tensor, got {type(x).__name__}.")
    return output, weights


def _diagnose_weights(weights: Tensor, q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> None:
    """Raise a Mismatch naming the likely mistake if ``weights`` are wrong."""
    d = q.shape[-1]
    _, expected = _reference_attention(q, k, v, mask, 1.0 / math.sqrt(d))
    if tuple(weights.shape) != tuple(expected.shape):
        raise Mismatch(
            f"the weights should have shape (..., Lq, Lk) = {tuple(expected.shape)}, "
            f"got {tuple(weights.shape)}."
        )
    w = weights.detach().to("cpu", torch.float64)
    full = torch.broadcast_to(mask, expected.shape)  # (..., Lq, Lk)
    empty_rows = ~full.any(dim=-1)  # (..., Lq): queries with no key to attend to
    if torch.isnan(w).any():
        if torch.isnan(w[empty_rows]).any() and not torch.isnan(w[~empty_rows]).any():
            raise Mismatch(
                "the weights are NaN in the rows whose keys are all masked: filling every score "
                "of a row with -inf makes softmax compute exp(-inf - (-inf)) = NaN. Fill with a "
                "finite number such as torch.finfo(scores.dtype).min, then set the weights of "
                "masked keys to 0 (e.g. `weights * attn_mask`)."
            )
        raise Mismatch("the weights contain NaN. Check the fill value and the softmax axis.")
    if _close(weights, expected):
        return
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(d)  # (..., Lq, Lk)
    if _close(weights, masked_softmax(scores, mask, dim=-2)):
        raise Mismatch(
            "your weights sum to 1 down each column (over the queries). Softmax must run over "
            "the keys, the last dimension (dim=-1): each query distributes its attention over "
            "the keys."
        )
    allowed_rows = ~empty_rows
    if empty_rows.any() and _close(w[allowed_rows], expected[allowed_rows]):
        n_keys = expected.shape[-1]
        if torch.allclose(w[empty_rows], torch.full_like(w[empty_rows], 1.0 / n_keys), atol=1e-5):
            raise Mismatch(
                "right on every row that has a key to attend to, but a row whose keys are all "
                f"masked got uniform weights 1/{n_keys}: with a big negative fill (-1e9) all its "
                "scores are equal, so softmax spreads the weight over padding. Such a row must "
                "get weight 0 everywhere (multiply the weights by the mask)."
            )
        raise Mismatch(
            "right on every row that has a key to attend to; a row whose keys are all masked "
            "must get weight 0 on every key."
        )
    if (w[~full] != 0).any():
        raise Mismatch(
            "some masked keys got a non-zero weight. True in attn_mask means 'may attend': "
            "fill the scores where the mask is False (`~attn_mask`), not where it is True."
        )
    if _close(weights, masked_softmax(scores * math.sqrt(d), mask)):
        raise Mismatch("these are the weights without scaling: divide the scores q·k by √d first.")
    if _close(weights, masked_softmax(scores / math.sqrt(d), mask)):
        raise Mismatch("you divided the scores by d; divide by √d (math.sqrt(d)) instead.")
    expect_close(
        weights,
        expected,
        what="the weights",
        hint="weights = softmax over the keys of q·k/√d, with masked keys at 0.",
    )


def masked_attention_trial(student_attention: Callable) -> None:
    """Raise NotAnswered / Mismatch unless ``student_attention`` solves exercise 3 (see the checker)."""
    fn = answered(student_attention, "your function")
    forbid(fn, ("scaled_dot_product_attention", "masked_softmax"),
           "fill the masked scores, take the softmax and zero the weights of masked keys yourself.")
    for q, k, v, mask in _attention_cases():
        output, weights = _call_attention(fn, q, k, v, mask)
        _diagnose_weights(weights, q, k, v, mask)
        expected_output, _ = _reference_attention(q, k, v, mask, 1.0 / math.sqrt(q.shape[-1]))
        expect_close(
            output,
            expected_output,
            what=f"the output for q of shape {tuple(q.shape)}",
            hint="the output is weights @ v (a weighted sum of the values).",
        )
    # gradients: a fully masked row must not poison the gradients of q, k or v
    q, k, v, mask = (x.clone() for x in _attention_cases()[0])
    for x in (q, k, v):
        x.requires_grad_(True)
    output, _ = _call_attention(fn, q, k, v, mask)
    expect(
        output.requires_grad,
        "the output is not connected to q, k and v for autograd (did you use .detach(), "
        ".item() or NumPy?); compute it with torch operations.",
    )
    output.pow(2).sum().backward()
    for name, x in (("q", q), ("k", k), ("v", v)):
        expect(
            x.grad is not None and bool(torch.isfinite(x.grad).all()),
            f"the forward pass is right, but the gradient of {name} contains NaN or inf. "
            "An additive -inf mask (scores + mask), or NaN patched away after the softmax, "
            "still sends NaN backwards; fill the masked scores with a finite number "
            "(torch.finfo(scores.dtype).min) before the softmax instead.",
        )


def check_masked_attention(
    student_attention: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
) -> None:
    """Check ``student_attention(q, k, v, attn_mask) -> (output, weights)``.

    q (..., Lq, D), k (..., Lk, D), v (..., Lk, Dv); attn_mask bool broadcastable to
    (..., Lq, Lk), True = may attend. A query row whose keys are all masked must get
    zero weights and a zero output, and gradients must stay finite.
    """
    report(
        run_check(
            MASKED_ATTENTION_EXERCISE,
            lambda: masked_attention_trial(student_attention),
            success="Fully masked rows give zeros, and gradients stay finite.",
        )
    )


# --- exercise 1: causal + padding mask ---------------------------------------------------


def _reference_causal_padding(items: Tensor) -> Tensor:
    length = items.shape[-1]
    return causal_mask(length) & padding_mask(items)[:, 0]  # (L, L) & (B, 1, L) -> (B, L, L)


def _mask_cases() -> list[Tensor]:
    """Left-padded histories (newest item last); one of them is empty."""
    return [
        torch.tensor(
            [
                [4, 8, 1, 6, 3],
                [PAD_ID, PAD_ID, 2, 7, 5],
                [PAD_ID, PAD_ID, PAD_ID, PAD_ID, 9],
                [PAD_ID] * 5,
            ]
        ),
        torch.tensor([[PAD_ID, 3, 1], [6, 2, 4]]),
    ]


def causal_padding_mask_trial(student_mask: Callable) -> None:
    """Raise NotAnswered / Mismatch unless ``student_mask`` solves exercise 1 (see the checker)."""
    fn = answered(student_mask, "your function")
    forbid(fn, ("causal_mask", "padding_mask", "combine_masks", "lengths_mask"),
           "build the lower triangle (torch.tril or a comparison of positions) and the real-key test yourself.")
    for items in _mask_cases():
        before = items.clone()
        got = answered(call(fn, items), "the mask")
        expect(
            torch.equal(items, before),
            "your function changed the item ids in place; compute a new tensor instead.",
        )
        batch, length = items.shape
        where = f"(histories of shape {tuple(items.shape)})"
        if not isinstance(got, Tensor):
            raise Mismatch(f"return a torch.Tensor, got {type(got).__name__}.")
        if got.dtype != torch.bool:
            if got.is_floating_point() and torch.isinf(got).any():
                raise Mismatch(
                    "this looks like an additive float mask (0 / -inf); the course uses "
                    "boolean masks with True = may attend."
                )
            raise Mismatch(
                f"the mask should be boolean (True = may attend), got dtype {got.dtype}. "
                "Comparisons such as `items != PAD_ID` already give booleans."
            )
        if tuple(got.shape) == (batch, 1, length, length):
            got = got[:, 0]
        expect(
            tuple(got.shape) == (batch, length, length),
            f"the mask should have shape (B, L, L) = {(batch, length, length)} {where}, "
            f"got {tuple(got.shape)}. Combine a (L, L) causal mask with a (B, 1, L) key mask.",
        )
        got = got.to("cpu")
        expected = _reference_causal_padding(items)
        if torch.equal(got, expected):
            continue
        causal = causal_mask(length)  # (L, L)
        keys_real = padding_mask(items)[:, 0]  # (B, 1, L)
        queries_real = keys_real.transpose(-2, -1)  # (B, L, 1)
        if torch.equal(got, ~expected):
            raise Mismatch("True and False are swapped: in this course True means 'may attend'.")
        if torch.equal(got, causal.T & keys_real) or torch.equal(got, causal.T.expand_as(got)):
            raise Mismatch(
                "the causal part is transposed: query i (row) may attend key j (column) when "
                "j <= i, the lower triangle (torch.tril)."
            )
        if torch.equal(got, causal.expand_as(got)):
            raise Mismatch(f"the causal part is right, but padded keys are still allowed {where}.")
        if torch.equal(got, keys_real.expand_as(got)):
            raise Mismatch(f"the padding part is right, but later keys are still allowed {where}.")
        if torch.equal(got, causal & queries_real):
            raise Mismatch(
                "you masked the padded *queries* (rows); padding must hide the padded *keys* "
                "(columns), i.e. the mask is items[b, j] != PAD_ID along the last dimension."
            )
        wrong = (got != expected).nonzero()[0].tolist()
        raise Mismatch(
            f"wrong at (batch, query, key) = {tuple(wrong)} {where}: expected "
            f"{bool(expected[tuple(wrong)])}. Query i may attend key j when j <= i and "
            "items[b, j] != PAD_ID."
        )


def check_causal_padding_mask(student_mask: Callable[[Tensor], Tensor]) -> None:
    """Check ``student_mask(items (B, L)) -> bool (B, L, L)``: True = query i may attend key j.

    Query i may attend key j when j <= i (causal) and items[b, j] is not PAD_ID.
    A shape (B, 1, L, L) (with a head dimension) is accepted too.
    """
    report(
        run_check(
            CAUSAL_PADDING_EXERCISE,
            lambda: causal_padding_mask_trial(student_mask),
            success="Each position sees only itself and earlier real items.",
        )
    )


# --- exercise 2: positions counted from the newest item -----------------------------------


def _position_cases() -> list[tuple[Tensor, Tensor]]:
    """(x (B, L, D), position_table (P, D)) pairs; the first has P > L, the second P == L."""
    generator = torch.Generator().manual_seed(5)
    shapes = [(2, 3, 4, 6), (3, 5, 8, 5), (1, 1, 2, 4)]  # (B, L, D, P)
    return [
        (torch.randn(b, length, d, generator=generator), torch.randn(p, d, generator=generator))
        for b, length, d, p in shapes
    ]


def _newest_rows(length: int) -> Tensor:
    """Row of the position table for each slot: ``L-1, L-2, ..., 0`` (the newest slot gets row 0)."""
    return torch.arange(length - 1, -1, -1)  # (L,)


def _diagnose_positions(got: Tensor, x: Tensor, table: Tensor) -> None:
    """Raise a Mismatch naming the likely mistake; ``got`` has the right shape but wrong values."""
    length, rows = x.shape[1], table.shape[0]
    slots = torch.arange(length)  # (L,)
    if _close(got, x):
        raise Mismatch("you returned x unchanged: add a position vector (a row of position_table) to every slot.")
    if _close(got, torch.broadcast_to(table[_newest_rows(length)], x.shape)):
        raise Mismatch(
            "you returned the position vectors alone; add them to the item vectors x (x + position vectors)."
        )
    wrong_rows = {
        "left": slots,  # slot l gets row l
        "one-based": _newest_rows(length) + 1,  # the newest slot gets row 1
        "table-end": rows - 1 - slots,  # counted back from the table's last row
        "table-right": rows - length + slots,  # the table's last L rows, oldest first
    }
    for name, index in wrong_rows.items():
        if int(index.max()) >= rows or not _close(got, x + table[index]):
            continue
        if name == "left":
            raise Mismatch(
                "you counted positions from the left (slot l gets row l). Then three more PAD slots on "
                "the left move every real item three positions on and change its vector. Count back "
                "from the newest slot instead: slot l of L gets row L-1-l."
            )
        if name == "one-based":
            raise Mismatch(
                "off by one: the newest slot got row 1. It is 0 steps back from itself, so it gets "
                "row 0, and slot l of L gets row L-1-l."
            )
        raise Mismatch(
            f"you counted from the end of the table (it has P = {rows} rows) rather than from the newest "
            f"slot of the history (L = {length}): slot l gets row L-1-l, whatever P is."
        )
    if _close(got, x - table[_newest_rows(length)]):
        raise Mismatch("you subtracted the position vectors; add them.")
    raise Mismatch(
        "the values are wrong: slot l of a history of length L gets x[:, l] + position_table[L-1-l] "
        "(the newest slot, l = L-1, gets row 0)."
    )


def newest_positions_trial(student_add_positions: Callable) -> None:
    """Raise NotAnswered / Mismatch unless ``student_add_positions`` solves exercise 2 (see the checker)."""
    fn = answered(student_add_positions, "your function")
    forbid(fn, ("positions_from_newest", "positions_from_oldest"),
           "work out which table row each slot needs (count back from the newest slot) yourself.")
    for x, table in _position_cases():
        before = (x.clone(), table.clone())
        try:
            got = answered(call(fn, x, table), "the result")
        except IndexError as exc:
            raise Mismatch(
                f"an index ran past the position table ({exc}). Slot l of a history of length L gets "
                "row L-1-l: from L-1 (the oldest slot) down to 0 (the newest), never L."
            ) from None
        expect(
            torch.equal(x, before[0]) and torch.equal(table, before[1]),
            "your function changed x or the table in place (e.g. `x += ...`); return a new tensor "
            "(`x + ...`) instead.",
        )
        if not isinstance(got, Tensor):
            raise Mismatch(f"return a torch.Tensor, got {type(got).__name__}.")
        expect(
            tuple(got.shape) == tuple(x.shape),
            f"the result should have the shape of x, (B, L, D) = {tuple(x.shape)} (with a table of "
            f"{table.shape[0]} rows), got {tuple(got.shape)}.",
        )
        expected = x + table[_newest_rows(x.shape[1])]  # (B, L, D) + (L, D)
        if not _close(got, expected):
            _diagnose_positions(got, x, table)


def check_newest_positions(student_add_positions: Callable[[Tensor, Tensor], Tensor]) -> None:
    """Check ``student_add_positions(x (B, L, D), position_table (P, D)) -> (B, L, D)``.

    The histories are right-aligned (newest item at slot L-1, padding on the left) and P >= L.
    Slot l gets ``x[:, l] + position_table[L-1-l]``: positions count back from the newest slot,
    so extra padding on the left changes no real item's position.
    """
    report(
        run_check(
            NEWEST_POSITIONS_EXERCISE,
            lambda: newest_positions_trial(student_add_positions),
            success="Extra padding on the left no longer moves any real item.",
        )
    )
