"""Checkers for notebook 09 (BERT4Rec).

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

__all__ = ["check_append_mask_token", "check_cloze"]

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
