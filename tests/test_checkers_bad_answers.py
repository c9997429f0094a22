"""Every exercise checker against the answers a student really writes (issue 15, defect 9).

A function that does work but forgets ``return`` is told so (it was "not answered yet" for 31 of
the 32 checkers); the student edition's placeholder still reads "not answered yet"; a check
leaves the notebook's random state as it found it, for a right answer (``CORRECT``, which each
checker must pass) and for a wrong one that draws, and never seeds a global generator; an
exception whose message cannot be printed, a NumPy number, an endless loop: each gets a
verdict, never a crash or a hang.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import random
import signal
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from checker_support import erasure_answer, not_answered, verdict

import course_lib.exercises as exercises
from course_lib import PAD_ID
from course_lib.attention import masked_softmax
from course_lib.data.time_buckets import TimeBucketConfig, log_time_buckets
from course_lib.exercises import core
from course_lib.exercises.bert4rec import sees_own_target_reference
from course_lib.exercises.capstone import check_explanation_share
from course_lib.exercises.evaluation import check_ndcg_at_k, check_pessimistic_rank
from course_lib.exercises.interests import found_interests_reference
from course_lib.exercises.multi_head import genre_only_reference
from course_lib.exercises.scale import check_kv_cache_bytes
from course_lib.explain import mass_on_truth
from course_lib.layers import sinusoidal_positions
from course_lib.models.bert4rec import append_mask_token, cloze
from course_lib.models.sasrec import attention_by_distance
from course_lib.text_encoder import mean_pool


def function_checkers() -> list:
    """Every ``check_*`` in course_lib.exercises whose answer is a function (all but check_kv_cache_bytes)."""
    found = []
    for module_info in pkgutil.iter_modules(exercises.__path__):
        module = importlib.import_module(f"{exercises.__name__}.{module_info.name}")
        for name, checker in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and checker.__module__ == module.__name__ and checker is not check_kv_cache_bytes:
                found.append(checker)
    return sorted(found, key=lambda c: c.__name__)


CHECKERS = function_checkers()


def _rank(scores, target, history):
    ranked = [c for c in range(len(scores)) if c + 1 not in history and c + 1 != target]
    return 1 + sum(bool(scores[c] >= scores[target - 1]) for c in ranked)


def _ndcg(scores, target, history, k):
    rank = _rank(scores, target, history)
    return 1 / math.log2(rank + 1) if rank <= k else 0.0


def _top_k_attention(scores, values, k):
    keep = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, scores.topk(k, dim=-1).indices, True)
    weights = masked_softmax(scores, keep)  # (B, L)
    return (weights.unsqueeze(-2) @ values).squeeze(-2), weights


def _target_attention(candidate, history, real):
    weights = masked_softmax(history @ candidate / math.sqrt(candidate.shape[-1]), real)  # (L,)
    return weights @ history, weights


def _pooling(items, scores, history):
    weights = masked_softmax(scores, (history != PAD_ID)[:, None, :])  # (B, K, L)
    return weights @ items, weights


def _interests(interests, items):
    logits = interests @ items.T  # (B, K + 1, I)
    return torch.logsumexp(logits, dim=1), torch.softmax(logits, dim=1).transpose(1, 2)


def _share(weights, interests, target):
    same = interests == target[:, None]
    return float((weights * same).sum(1).mean()), float((same.sum(1) / (interests != -2).sum(1)).mean())


def _nearest(embeddings, query, k):
    unit = F.normalize(embeddings, dim=-1)
    similarity = unit @ unit[query]
    similarity[query] = -float("inf")
    return similarity.topk(k).indices


def _next_item_loss(hidden, items, targets):
    keep = targets != PAD_ID
    return F.cross_entropy(hidden[keep] @ items[1:].T, targets[keep] - 1)


def _ctr_loss(pos, neg):
    return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
        neg, torch.zeros_like(neg))


def _masked_attention(q, k, v, mask):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~mask, torch.finfo(q.dtype).min)
    weights = torch.softmax(scores, dim=-1) * mask
    return weights @ v, weights


def _greedy(model, prompt, n_new):
    tokens = prompt
    for _ in range(n_new):
        tokens = torch.cat([tokens, model(tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens


def _post_ln(block, x):
    h = block.norm1(x + block.attention(query=x))
    return block.norm2(h + block.feed_forward(h))


def _masked_pooling(history, query, attn_mask):
    scores = (history @ query.unsqueeze(-1)).squeeze(-1).masked_fill(~attn_mask, torch.finfo(history.dtype).min)
    exp = (scores - scores.amax(dim=-1, keepdim=True)).exp() * attn_mask  # (B, L), masked keys 0
    weights = exp / exp.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return (weights.unsqueeze(-2) @ history).squeeze(-2), weights


def _winning_stretch(users, items, item):
    scores = users @ items.T
    own, others = scores[:, item], scores.clone()
    others[:, item] = -math.inf
    return torch.where(own > 0, others.amax(dim=1) / own, torch.full_like(own, math.inf))


def _bootstrap(a, b, n_resamples, generator):
    diff = a - b
    means = diff[torch.randint(diff.numel(), (n_resamples, diff.numel()), generator=generator)].mean(1)
    return tuple(torch.quantile(means, torch.tensor([0.025, 0.975], dtype=means.dtype)).tolist())


CORRECT = {  # a right answer for every function checker, mostly the library's own function
    "check_append_mask_token": append_mask_token,
    "check_attention_by_distance": lambda weights, history: attention_by_distance(weights, history)[0],
    "check_candidate_over_interests": _interests,
    "check_causal_padding_mask": lambda items: torch.ones(items.shape[1], items.shape[1], dtype=torch.bool).tril()
    & (items != PAD_ID)[:, None, :],
    "check_cloze": lambda sequences, mask_id, p, g: cloze(sequences, mask_id=mask_id, mask_prob=p, generator=g),
    "check_ctr_loss": _ctr_loss,
    "check_erasure": erasure_answer,
    "check_explanation_share": _share,
    "check_greedy_decode": _greedy,
    "check_mass_on_truth": mass_on_truth,
    "check_masked_attention": _masked_attention,
    "check_mean_pool": mean_pool,
    "check_modality_weights": lambda scores: torch.softmax(scores.squeeze(-1), dim=-1),
    "check_multi_interest_pooling": _pooling,
    "check_ndcg_at_k": _ndcg,
    "check_nearest_neighbours": _nearest,
    "check_next_item_loss": _next_item_loss,
    "check_online_logsumexp": lambda scores, chunk_size: torch.logsumexp(scores, dim=-1),
    "check_patchify": lambda images, p: F.unfold(images, kernel_size=p, stride=p).transpose(1, 2),
    "check_pessimistic_rank": _rank,
    "check_post_ln_block": _post_ln,
    "check_sinusoidal_positions": sinusoidal_positions,
    "check_pooling_grad": lambda s, v, g: (w := torch.softmax(s, -1)) * (v @ g - (w @ v) @ g),
    "check_masked_pooling": _masked_pooling,
    "check_target_attention": _target_attention,
    "check_time_bucket": lambda gaps, unit, n: log_time_buckets(gaps, config=TimeBucketConfig(unit_seconds=unit, num_buckets=n)),
    "check_top_k_attention": _top_k_attention,
    "check_top_k_unseen": lambda scores, seen, k: scores.masked_fill(seen, -math.inf).topk(k, dim=-1).indices,
    "check_winning_stretch": _winning_stretch,
    "check_genre_only_projection": genre_only_reference,
    "check_longest_history": lambda budget, heads, batch: math.isqrt(budget // (4 * heads * batch)),
    "check_wrong_view_source": lambda h, l, e, n, heads, dh: divmod((h * n + l) * dh + e, heads * dh),
    "check_newest_positions": lambda x, table: x + table[: x.shape[1]].flip(0),
    "check_choose_and_report": lambda valid, test: (int(np.nanargmax(valid)), test[int(np.nanargmax(valid))]),
    "check_found_interests": found_interests_reference,
    "check_is_real_improvement": lambda a, b: bool((d := a - b).mean() - 1.96 * d.std() / math.sqrt(d.numel()) > 0),
    "check_paired_bootstrap": _bootstrap,
    "check_sees_own_target": sees_own_target_reference,
    "check_next_token_mask": lambda codes, prefix, v: torch.zeros(v, dtype=torch.bool).index_fill_(
        0, codes[(codes[:, : len(prefix)] == prefix).all(1), len(prefix)], True),
    "check_quantize_level": lambda r, c: (lambda k: (k, r - c[k]))(torch.cdist(r, c).argmin(1)),
    "check_lora_forward": lambda x, weight, bias, a, b, alpha, r: x @ weight.T + bias + (alpha / r) * (x @ a.T @ b.T),
    "check_candidate_log_likelihood": lambda logits, tokens, start: logits[start - 1 : -1].log_softmax(-1).gather(
        1, tokens[start:, None]).sum(),
}


def test_the_list_of_checkers_is_complete():
    assert len(CHECKERS) == 42
    assert sorted(CORRECT) == [checker.__name__ for checker in CHECKERS]


def did_work_but_forgot_return(*args, **kwargs):
    total = sum(1 for _ in args)  # noqa: F841 - the work whose result never comes back


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_function_that_returns_none_is_told_it_forgot_return(capsys, checker):
    out = verdict(capsys, checker, did_work_but_forgot_return)
    assert "❌" in out and "`did_work_but_forgot_return` returned None — did you forget `return`?" in out, out


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_the_student_editions_placeholder_is_still_not_answered(capsys, checker):
    assert "⏳" in verdict(capsys, checker, not_answered)
    assert "⏳" in verdict(capsys, checker, None)


def draws_then_answers_nonsense(*args, **kwargs):
    torch.rand(5)
    np.random.rand(5)
    random.random()
    return torch.zeros(1)


@pytest.mark.parametrize("right", [True, False], ids=["right answer", "wrong answer that draws"])
@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_check_leaves_the_global_random_state_as_it_found_it(capsys, checker, right):
    answer = CORRECT[checker.__name__] if right else draws_then_answers_nonsense
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    expected = torch.rand(3), np.random.rand(3), random.random()
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    verdict(capsys, checker, answer)  # the checker's draws and the student's
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_a_check_never_seeds_the_global_generators(capsys, checker, monkeypatch):
    seeded = []
    for module, name in ((torch, "manual_seed"), (torch, "seed"), (np.random, "seed"), (random, "seed")):
        monkeypatch.setattr(module, name, lambda *args, _name=f"{module.__name__}.{name}", **kwargs: seeded.append(_name))
    assert "✅" in verdict(capsys, checker, CORRECT[checker.__name__])
    assert seeded == [], f"{checker.__name__} seeded {seeded}: draw from a local torch.Generator instead"


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("__str__ itself fails")

    def __repr__(self):
        raise RuntimeError("__repr__ itself fails")


def raises_unprintable(*args, **kwargs):
    raise Unprintable


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_an_exception_that_cannot_be_printed_is_reported_by_its_type(capsys, checker):
    out = verdict(capsys, checker, raises_unprintable)
    assert "❌" in out and "raised Unprintable: (its message could not be printed)" in out


def test_numeric_answers_may_be_any_real_number_type(capsys):
    right = 2 * 2 * 50 * 64 * 4
    for answer in (right, np.int64(right), np.int32(right), np.float32(right), float(right), torch.tensor(right), np.array(right)):
        assert "✅" in verdict(capsys, lambda a=answer: check_kv_cache_bytes(a, n_layers=2, length=50, d_model=64))
    for answer in (True, np.bool_(True), "a lot", [right]):
        out = verdict(capsys, lambda a=answer: check_kv_cache_bytes(a, n_layers=2, length=50, d_model=64))
        assert "❌" in out and "should be a number" in out
    assert "✅" in verdict(capsys, check_pessimistic_rank, lambda *args: np.int64(_rank(*args)))
    assert "should be a number, got bool" in verdict(capsys, check_pessimistic_rank, lambda *args: True)
    assert "✅" in verdict(capsys, check_ndcg_at_k, lambda *args: np.float64(_ndcg(*args)))
    assert "✅" in verdict(capsys, check_explanation_share, lambda *args: tuple(np.float64(x) for x in _share(*args)))
    assert "should be a number, got str" in verdict(capsys, check_explanation_share, lambda *args: ("0.5", "0.5"))


def loops_for_ever(*args, **kwargs):
    while True:
        pass


@pytest.mark.timeout(60)
@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_an_endless_loop_becomes_a_hint_within_the_time_limit(capsys, checker, monkeypatch):
    monkeypatch.setattr(core, "TIME_LIMIT_SECONDS", 0.1)
    started = time.monotonic()
    out = verdict(capsys, checker, loops_for_ever)
    assert "❌" in out and "did not finish within 0.1 s — is there a loop that never ends" in out
    assert time.monotonic() - started < 5


@pytest.mark.timeout(60)
def test_the_time_limit_puts_the_previous_alarm_back(capsys, monkeypatch):
    """After a check, SIGALRM has its old handler and an outer timer (pytest-timeout's) still runs."""
    monkeypatch.setattr(core, "TIME_LIMIT_SECONDS", 0.1)
    checker = CHECKERS[0]

    def outer_alarm(signum, frame):
        raise AssertionError("the outer alarm went off")

    previous_handler = signal.signal(signal.SIGALRM, outer_alarm)
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        for answer in (loops_for_ever, CORRECT[checker.__name__], did_work_but_forgot_return):
            verdict(capsys, checker, answer)
            assert signal.getsignal(signal.SIGALRM) is outer_alarm
            assert 9 < signal.getitimer(signal.ITIMER_REAL)[0] <= 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, previous_delay)
        signal.signal(signal.SIGALRM, previous_handler)
