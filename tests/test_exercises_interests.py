"""The checkers of notebook 10: each prints a pass, a hint, or "not answered yet", and never raises."""

from __future__ import annotations

import pytest
import torch
from checker_support import not_answered, verdict

from course_lib import PAD_ID
from course_lib.attention import masked_softmax
from course_lib.exercises.interests import check_multi_interest_pooling, check_time_bucket


def _bucket(gaps, unit, n):
    return 1 + torch.floor(torch.log2(1 + gaps.double() / unit)).clamp(max=n - 2).long()


def _pooling(items, scores, history):
    weights = masked_softmax(scores, (history != PAD_ID)[:, None, :])
    return weights @ items, weights


@pytest.mark.parametrize(
    ("answer", "mark", "hint"),
    [
        (_bucket, "✅", "passed"),
        (lambda g, u, n: _bucket(g, u, n) - 1, "❌", "should be bucket 1, got 0"),  # forgot the + 1 (NO_GAP is 0)
        (lambda g, u, n: 1 + torch.floor(torch.log2(1 + g.double() / u)).long(), "❌", "num_buckets - 2"),  # no clipping
        (lambda g, u, n: _bucket(g, u, n).double(), "❌", "integers"),
        (lambda g, u, n: None, "❌", "forget `return`"),
        (not_answered, "⏳", "not answered"),
    ],
)
def test_check_time_bucket(capsys, answer, mark, hint):
    out = verdict(capsys, check_time_bucket, answer)
    assert out.startswith(mark) and hint in out, out


@pytest.mark.parametrize(
    ("answer", "mark", "hint"),
    [
        (_pooling, "✅", "passed"),
        (lambda i, s, h: (torch.softmax(s, -1) @ i, torch.softmax(s, -1)), "❌", "padding"),  # padding not masked
        (lambda i, s, h: (torch.softmax(s.masked_fill((h == PAD_ID)[:, None], float("-inf")), -1) @ i,
                          torch.softmax(s.masked_fill((h == PAD_ID)[:, None], float("-inf")), -1)), "❌", "NaN"),
        (lambda i, s, h: (_pooling(i, s, h)[1].transpose(1, 2).sum(-1, keepdim=True) * 0, _pooling(i, s, h)[1]), "❌", "interests"),
        (lambda i, s, h: _pooling(i, s, h)[0], "❌", "pair"),
        (not_answered, "⏳", "not answered"),
    ],
)
def test_check_multi_interest_pooling(capsys, answer, mark, hint):
    out = verdict(capsys, check_multi_interest_pooling, answer)
    assert out.startswith(mark) and hint in out, out
