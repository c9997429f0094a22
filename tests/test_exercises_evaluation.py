"""Notebook 06's checkers: pass the reference, reject a wrong answer with a hint, wait for a stub."""

from __future__ import annotations

import math

import numpy as np
import torch

from course_lib.exercises.evaluation import check_choose_and_report, check_ndcg_at_k, check_pessimistic_rank


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


def choose_on_validation(valid, test):
    index = int(np.nanargmax(np.asarray(valid, dtype=float)))
    return index, test[index]


def verdict_of(capsys, answer):
    check_choose_and_report(answer)
    return capsys.readouterr().out


def test_choose_and_report_accepts_validation_choice_and_test_number(capsys):
    assert "✅" in verdict_of(capsys, choose_on_validation)
    assert "✅" in verdict_of(capsys, lambda v, t: [np.int64(choose_on_validation(v, t)[0]), np.float32(choose_on_validation(v, t)[1])])


def test_choose_and_report_names_each_naive_mistake(capsys):
    on_test = verdict_of(capsys, lambda v, t: (int(np.argmax(t)), max(t)))
    assert "❌" in on_test and "best on TEST" in on_test
    plain_argmax = verdict_of(capsys, lambda v, t: (int(np.argmax(v)), t[int(np.argmax(v))]))
    assert "❌" in plain_argmax and "nanargmax" in plain_argmax
    validation_number = verdict_of(capsys, lambda v, t: (choose_on_validation(v, t)[0], np.nanmax(v)))
    assert "❌" in validation_number and "VALIDATION score" in validation_number
    def last_of_ties(valid, test):
        index = len(valid) - 1 - int(np.nanargmax(np.asarray(valid, dtype=float)[::-1]))
        return index, test[index]

    last_tie = verdict_of(capsys, last_of_ties)
    assert "❌" in last_tie and "earliest" in last_tie
    assert "pair" in verdict_of(capsys, lambda v, t: choose_on_validation(v, t)[0])
    assert "⏳" in verdict_of(capsys, stub)
