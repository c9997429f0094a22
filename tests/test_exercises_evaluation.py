"""Notebook 06's checkers: pass the reference, reject a wrong answer with a hint, wait for a stub."""

from __future__ import annotations

import math

import torch

from course_lib.exercises.evaluation import check_ndcg_at_k, check_pessimistic_rank


def good_rank(scores, target, history):
    ranked = [c for c in range(len(scores)) if c + 1 not in history and c + 1 != target]
    return 1 + sum(bool(scores[c] >= scores[target - 1]) for c in ranked)


def optimistic_rank(scores, target, history):
    ranked = [c for c in range(len(scores)) if c + 1 not in history and c + 1 != target]
    return 1 + sum(bool(scores[c] > scores[target - 1]) for c in ranked)


def good_ndcg(scores, target, history, k):
    rank = good_rank(scores, target, history)
    return 1 / math.log2(rank + 1) if rank <= k else 0.0


def natural_log_ndcg(scores, target, history, k):
    rank = good_rank(scores, target, history)
    return 1 / math.log(rank + 1) if rank <= k else 0.0


def stub(*args):
    raise NotImplementedError


def test_rank_checker(capsys):
    check_pessimistic_rank(good_rank)
    assert "✅" in capsys.readouterr().out
    check_pessimistic_rank(optimistic_rank)
    out = capsys.readouterr().out
    assert "❌" in out and ">=" in out
    check_pessimistic_rank(stub)
    assert "⏳" in capsys.readouterr().out
    check_pessimistic_rank(lambda s, t, h: torch.tensor(good_rank(s, t, h)))
    assert "✅" in capsys.readouterr().out


def test_ndcg_checker(capsys):
    check_ndcg_at_k(good_ndcg)
    assert "✅" in capsys.readouterr().out
    check_ndcg_at_k(natural_log_ndcg)
    out = capsys.readouterr().out
    assert "❌" in out and "log2" in out
    check_ndcg_at_k(lambda *a: None)
    assert "forget `return`" in capsys.readouterr().out
