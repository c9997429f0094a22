"""The checkers of notebook 12: pass on the reference, hint on typical mistakes,
"not answered" on the stub, and never raise."""

from __future__ import annotations

import pytest
import torch
from checker_support import not_answered

from course_lib.exercises.multimodal import check_modality_weights, check_patchify
from course_lib.models.multimodal import patchify


def _patchify_wrong_order(images, p):  # features (row, column, channel) instead of (channel, row, column)
    b, c, s, _ = images.shape
    n = s // p
    return images.reshape(b, c, n, p, n, p).permute(0, 2, 4, 3, 5, 1).reshape(b, n * n, c * p * p)


def _patchify_plain_reshape(images, p):  # a reshape is not a cut into square blocks
    b, c, s, _ = images.shape
    return images.reshape(b, (s // p) ** 2, c * p * p)


@pytest.mark.parametrize(
    "checker, right, wrong, hint",
    [
        (check_patchify, patchify, _patchify_plain_reshape, "top-left"),
        (check_patchify, patchify, _patchify_wrong_order, "(channel, row, column)"),
        (check_modality_weights, lambda s: torch.softmax(s.squeeze(-1), dim=-1), lambda s: torch.softmax(s, dim=-1),
         "size 1"),
        (check_modality_weights, lambda s: torch.softmax(s.squeeze(-1), dim=-1), lambda s: torch.softmax(s.squeeze(-1), dim=0),
         "sum to 1 over its M modalities"),
    ],
)
def test_checkers(capsys, checker, right, wrong, hint):
    checker(right)
    assert "passed" in capsys.readouterr().out
    checker(wrong)
    out = capsys.readouterr().out
    assert "not yet" in out and hint in out, out
    checker(not_answered)
    assert "not answered" in capsys.readouterr().out
    checker(lambda *a: None)
    assert "forget `return`" in capsys.readouterr().out
