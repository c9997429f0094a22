"""Checkers for notebook 09 (BERT4Rec).

Exercise 3 (:func:`check_sees_own_target`) is a judgement: does a proposed attention mask still let
next-item training see its own target? Checked on masks where reading ``attn_mask[l, l + 1]`` alone,
or forgetting the residual connection, decides wrongly.

Each ``check_*`` takes the student's function, prints a pass, a hint or "not answered
yet", and returns None; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..constants import PAD_ID
from ..models.bert4rec import append_mask_token
from .core import Mismatch, answered, call, expect, report, run_check

__all__ = ["check_append_mask_token", "check_cloze", "check_sees_own_target", "sees_own_target_reference"]

_ITEMS = 20
_MASK_ID = _ITEMS + 1


def _sequences(seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    sequences = torch.randint(1, _ITEMS + 1, (6, 10), generator=g)
    sequences[0, :7] = PAD_ID  # three items
    sequences[1, :9] = PAD_ID  # one item
    sequences[2, :] = PAD_ID  # empty
    return sequences


def check_cloze(fn: Callable[[Tensor, int, float, torch.Generator], tuple[Tensor, Tensor]] | None) -> None:
    """Check ``fn(sequences (B, L), mask_id, mask_prob, generator) -> (inputs, labels)`` by its properties.

    Random draws differ between implementations, so the checker tests what must always hold:
    padding is never hidden; ``inputs`` is ``mask_id`` exactly where ``labels`` holds an item;
    the label there is the original item; everything else is unchanged; every non-empty
    sequence hides at least one item; and about ``mask_prob`` of the items are hidden.
    """

    def trial() -> None:
        answered(fn, "cloze")
        for seed in range(4):
            sequences = _sequences(seed)
            got = answered(call(fn, sequences.clone(), _MASK_ID, 0.3, torch.Generator().manual_seed(seed)), "the value returned")
            if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(t, Tensor) for t in got)):
                raise Mismatch("return a pair of tensors (inputs, labels).")
            inputs, labels = got
            if inputs.shape != sequences.shape or labels.shape != sequences.shape:
                raise Mismatch(f"inputs and labels must both have the shape of sequences {tuple(sequences.shape)}.")
            pad = sequences == PAD_ID
            expect(bool(torch.all(inputs[pad] == PAD_ID)), "a padding slot was changed: only real items (not PAD_ID) may be hidden.")
            expect(bool(torch.all(labels[pad] == PAD_ID)), "labels must be PAD_ID wherever nothing was hidden, padding included.")
            hidden = inputs == _MASK_ID
            expect(bool(torch.equal(hidden, labels != PAD_ID)),
                   "put a label exactly where MASK_ID went into the inputs, and PAD_ID (no label) everywhere else.")
            expect(bool(torch.equal(labels[hidden], sequences[hidden])), "the label at a hidden position is the item that was there.")
            expect(bool(torch.equal(inputs[~hidden], sequences[~hidden])), "items that are not hidden must stay as they were.")
            expect(bool(torch.all(hidden.any(1) == (~pad).any(1))),
                   "every sequence with at least one item must hide at least one (hide its newest item if the draw hid none); "
                   "an empty sequence hides nothing.")
        big = torch.randint(1, _ITEMS + 1, (100, 50), generator=torch.Generator().manual_seed(9))
        inputs, _ = call(fn, big, _MASK_ID, 0.3, torch.Generator().manual_seed(9))
        rate = (inputs == _MASK_ID).float().mean().item()
        expect(0.26 < rate < 0.34, f"with mask_prob=0.3 about 30% of the items should be hidden, you hid {rate:.0%}.")

    report(run_check("Exercise 1 (cloze)", trial, "Padding is never hidden, and every hidden item is a label."))


def check_append_mask_token(fn: Callable[[Tensor, int], Tensor] | None) -> None:
    """Check ``fn(history (B, L) right-aligned, mask_id) -> (B, L)``: drop the oldest slot, put ``mask_id`` last."""

    def trial() -> None:
        answered(fn, "append_mask_token")
        for seed in range(3):
            history = _sequences(seed)
            got = answered(call(fn, history.clone(), _MASK_ID), "the value returned")
            expected = append_mask_token(history, _MASK_ID)
            if isinstance(got, Tensor) and got.shape == (history.shape[0], history.shape[1] + 1):
                raise Mismatch("keep L positions (the model has only L position vectors): drop the oldest slot, history[:, 1:].")
            if isinstance(got, Tensor) and got.shape == expected.shape and bool(torch.all(got[:, 0] == _MASK_ID)):
                raise Mismatch("MASK_ID goes at the end (position L-1, after the newest item), not at the start.")
            expect(isinstance(got, Tensor) and got.shape == expected.shape and bool(torch.equal(got, expected)),
                   "return torch.cat([history[:, 1:], a column of MASK_ID], dim=1).")

    report(run_check("Exercise 2 (append MASK_ID)", trial, "The model's answer is read at that last position."))


def sees_own_target_reference(attn_mask: Tensor, n_layers: int) -> Tensor:
    """For next-item training, which positions' outputs depend on their own target (the input one slot later)?

    A block lets query ``l`` read key ``j`` where ``attn_mask[l, j]`` and keeps its own state through the
    residual connection, so one block spreads dependence along ``attn_mask | I``; ``n_layers`` blocks along
    that relation's ``n_layers``-th boolean power.

    Args:
        attn_mask: (L, L) bool, True = query l may attend to key j.
        n_layers: stacked blocks (>= 1).

    Returns:
        (L,) bool: True at ``l < L - 1`` when the output at ``l`` depends on the input at ``l + 1``;
        the last position has no target in the window and is False.
    """
    length = attn_mask.shape[-1]
    step = (attn_mask.bool() | torch.eye(length, dtype=torch.bool)).double()  # (L, L): attention or residual
    reach = torch.eye(length, dtype=torch.float64)  # (L, L): output l depends on input j
    for _ in range(n_layers):
        reach = ((step @ reach) > 0).double()
    leaks = torch.zeros(length, dtype=torch.bool)
    leaks[:-1] = torch.diagonal(reach, offset=1) > 0  # reach[l, l + 1]
    return leaks


def _leak_cases() -> list[tuple[str, Tensor, int]]:
    """(name, attn_mask (L, L), n_layers); the last three defeat the shortcuts."""
    length = 7
    query, key = torch.arange(length)[:, None], torch.arange(length)[None, :]  # (L, 1), (1, L)
    causal = key <= query
    every = torch.ones(length, length, dtype=torch.bool)
    hide_next = key != query + 1  # bidirectional, except that l may not read its own target l + 1
    hops = (key == query - 1) | (key == query + 2)  # one step back or two ahead, no self
    window = (key - query).abs() <= 1
    return [
        ("causal, 1 block", causal, 1),
        ("causal, 3 blocks", causal, 3),
        ("bidirectional, 2 blocks", every, 2),
        ("bidirectional except the target itself, 1 block", hide_next, 1),
        ("bidirectional except the target itself, 2 blocks", hide_next, 2),
        ("one back or two ahead, 3 blocks", hops, 3),
        ("window of one neighbour each side, 2 blocks", window, 2),
    ]


def check_sees_own_target(fn: Callable[[Tensor, int], Tensor] | None) -> None:
    """Check ``fn(attn_mask (L, L) bool, n_layers) -> (L,) bool``: whose output depends on its own next-item target."""

    def trial() -> None:
        answered(fn, "sees_own_target")
        for name, mask, n_layers in _leak_cases():
            expected = sees_own_target_reference(mask, n_layers)
            got = call(fn, mask.clone(), n_layers)
            if not isinstance(got, Tensor) or tuple(got.shape) != tuple(expected.shape):
                raise Mismatch(f"return a (L,) = ({mask.shape[0]},) tensor of True/False, got "
                               f"{tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}.")
            got = got.bool()
            if torch.equal(got, expected):
                continue
            one_block = sees_own_target_reference(mask, 1)
            no_residual = torch.linalg.matrix_power(mask.double(), n_layers) > 0
            if torch.equal(got[:-1], torch.diagonal(no_residual, offset=1)) and bool(got[-1]) is False:
                raise Mismatch(f"case '{name}': every block adds its input back (the residual connection), so a position "
                               "keeps what it already depended on: spread dependence along attn_mask | I, not attn_mask.")
            if n_layers > 1 and torch.equal(got, one_block):
                raise Mismatch(f"case '{name}': you looked at one block only. With {n_layers} blocks information travels in "
                               "hops: l reads k in the second block, and k's state already read l + 1 in the first.")
            if bool(got[-1]):
                raise Mismatch("the last position's target lies outside the window: it cannot depend on it (False).")
            raise Mismatch(f"case '{name}': expected {expected.tolist()}, got {got.tolist()}. Output l depends on input j "
                           "after n blocks when a chain l -> ... -> j of at most n attention steps (attn_mask[l, k] True) "
                           "connects them.")

    report(run_check("Exercise 3 (does next-item training see its answer?)", trial,
                     "Blocking the target key is not enough once two blocks can relay it."))
