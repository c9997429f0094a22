"""The checkers of notebook 14: a pass for right answers, a useful hint for typical mistakes, never a crash."""

from __future__ import annotations

import math

import pytest
import torch
from checker_support import verdict

from course_lib.exercises.scale import check_kv_cache_bytes, check_online_logsumexp


def online_logsumexp(scores, chunk_size):
    running_max = torch.full(scores.shape[:-1], -math.inf)
    running_sum = torch.zeros(scores.shape[:-1])
    for start in range(0, scores.shape[-1], chunk_size):
        chunk = scores[..., start : start + chunk_size]
        new_max = torch.maximum(running_max, chunk.amax(dim=-1))
        running_sum = running_sum * torch.exp(running_max - new_max) + torch.exp(chunk - new_max[..., None]).sum(-1)
        running_max = new_max
    return running_max + running_sum.log()


def naive(scores, chunk_size):
    return torch.log(torch.exp(scores).sum(-1))


def last_chunk_only(scores, chunk_size):
    start = (scores.shape[-1] - 1) // chunk_size * chunk_size
    return torch.logsumexp(scores[..., start:], dim=-1)


def no_rescale(scores, chunk_size):  # forgets to rescale the old sum when the max rises
    running_max = torch.full(scores.shape[:-1], -math.inf)
    running_sum = torch.zeros(scores.shape[:-1])
    for start in range(0, scores.shape[-1], chunk_size):
        chunk = scores[..., start : start + chunk_size]
        running_max = torch.maximum(running_max, chunk.amax(dim=-1))
        running_sum = running_sum + torch.exp(chunk - running_max[..., None]).sum(-1)
    return running_max + running_sum.log()


def test_online_logsumexp(capsys):
    assert "passed" in verdict(capsys, lambda: check_online_logsumexp(online_logsumexp))
    assert "overflow" in verdict(capsys, lambda: check_online_logsumexp(naive))
    assert "last chunk" in verdict(capsys, lambda: check_online_logsumexp(last_chunk_only))
    out = verdict(capsys, lambda: check_online_logsumexp(no_rescale))
    assert "not yet" in out and "exp(m - m')" in out
    assert "forget `return`" in verdict(capsys, lambda: check_online_logsumexp(lambda s, c: None))

    def stub(scores, chunk_size):
        raise NotImplementedError

    assert "not answered" in verdict(capsys, lambda: check_online_logsumexp(stub))
    assert "raised" in verdict(capsys, lambda: check_online_logsumexp(lambda s, c: 1 / 0))


@pytest.mark.parametrize(
    ("answer", "expected_text"),
    [
        (2 * 2 * 100 * 64 * 4, "passed"),
        (2 * 100 * 64 * 4, "2x too small"),  # keys only, or one layer only
        (2 * 2 * 100 * 64, "4x too small"),  # floats, not bytes
        (100 * 64 * 4, "4x too small"),
        (2 * 2 * 100 * 100 * 64 * 4, "linearly"),
        (12345, "not yet"),
        (None, "not answered"),
        ("a lot", "a number"),
    ],
)
def test_kv_cache_bytes(capsys, answer, expected_text):
    out = verdict(capsys, lambda: check_kv_cache_bytes(answer, n_layers=2, length=100, d_model=64))
    assert expected_text in out
