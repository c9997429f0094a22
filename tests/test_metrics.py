"""The evaluation path against a brute-force reference and scikit-learn, on random scores with ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from factories import history_batch
from sklearn.metrics import ndcg_score, roc_auc_score

from course_lib import PAD_ID
from course_lib.metrics import (
    Evaluation,
    evaluate,
    evaluate_sampled,
    exclusion_mask,
    hit_rate,
    ndcg,
    sample_negatives,
    target_aucs,
    target_ranks,
)
from course_lib.models import Recommender


def random_case(seed: int, users: int = 12, items: int = 30, seen: int = 6, levels: int = 5):
    """Scores with many ties (few distinct levels), targets, and padded seen lists."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, (users, items), generator=g).float()  # (B, I), lots of ties
    targets = torch.randint(1, items + 1, (users,), generator=g)
    excluded = torch.full((users, seen), PAD_ID)
    for b in range(users):
        n = int(torch.randint(0, seen + 1, (1,), generator=g))
        excluded[b, :n] = torch.randperm(items, generator=g)[:n] + 1
    return scores, targets, excluded


def brute_force_rank(scores, target, seen):
    """1 + number of ranked items (not seen, not the target) scoring >= the target."""
    s_t = scores[target - 1]
    return 1 + sum(
        1 for item in range(1, len(scores) + 1) if item != target and item not in seen and scores[item - 1] >= s_t
    )


@pytest.mark.parametrize("seed", range(6))
def test_ranks_match_brute_force_with_ties(seed):
    scores, targets, excluded = random_case(seed)
    ranks = target_ranks(scores, targets, excluded)
    for b in range(len(targets)):
        seen = set(excluded[b].tolist()) - {PAD_ID}
        assert ranks[b].item() == brute_force_rank(scores[b].tolist(), targets[b].item(), seen)


@pytest.mark.parametrize("seed", range(3))
def test_optimistic_ranks_only_for_comparison(seed):
    scores, targets, excluded = random_case(seed)
    optimistic = target_ranks(scores, targets, excluded, ties="optimistic")
    pessimistic = target_ranks(scores, targets, excluded)
    for b in range(len(targets)):
        seen = set(excluded[b].tolist()) - {PAD_ID}
        s_t = scores[b, targets[b] - 1]
        others = [i for i in range(1, scores.shape[1] + 1) if i != targets[b] and i not in seen]
        assert optimistic[b] == 1 + sum(1 for i in others if scores[b, i - 1] > s_t)
    assert (optimistic <= pessimistic).all() and (optimistic < pessimistic).any()
    with pytest.raises(ValueError, match="ties"):
        target_ranks(scores, targets, excluded, ties="random")


def test_target_in_history_is_still_ranked_and_constant_scores_rank_last():
    scores = torch.zeros(2, 5)
    targets = torch.tensor([2, 5])
    excluded = torch.tensor([[2, 3, 0], [1, 0, 0]])
    # all tied: pessimistic rank = number of ranked items (target last)
    assert target_ranks(scores, targets, excluded).tolist() == [4, 4]
    mask = exclusion_mask(excluded, targets, 5)
    assert mask.tolist() == [[False, False, True, False, False], [True, False, False, False, False]]


@pytest.mark.parametrize("seed", range(6))
def test_ndcg_matches_scikit_learn(seed):
    """scikit-learn averages over tied orderings; lowering the target below its ties makes it pessimistic."""
    scores, targets, excluded = random_case(seed, levels=4)
    ranks = target_ranks(scores, targets, excluded)
    for k in (1, 3, 10):
        ours = [ndcg(ranks[b : b + 1], k) for b in range(len(ranks))]  # the library's NDCG@K, user by user
        for b in range(len(targets)):
            keep = [i for i in range(scores.shape[1]) if (i + 1) not in set(excluded[b].tolist()) or i + 1 == targets[b]]
            y_true = np.zeros((1, len(keep)))
            y_true[0, keep.index(targets[b].item() - 1)] = 1
            y_score = scores[b, keep].numpy().astype(np.float64)[None].copy()
            y_score[0, keep.index(targets[b].item() - 1)] -= 1e-6  # break ties against the target
            assert ours[b] == pytest.approx(ndcg_score(y_true, y_score, k=k), abs=1e-12)
            # without the nudge, scikit-learn's tie-averaged NDCG is never below the pessimistic one
            y_plain = scores[b, keep].numpy().astype(np.float64)[None]
            assert ndcg_score(y_true, y_plain, k=k) >= ours[b] - 1e-12


@pytest.mark.parametrize("seed", range(6))
def test_auc_matches_roc_auc_score_on_continuous_scores(seed):
    scores, targets, excluded = random_case(seed, levels=6)
    aucs = target_aucs(scores, targets, excluded)
    for b in range(len(targets)):
        seen = set(excluded[b].tolist()) - {PAD_ID}
        keep = [i for i in range(scores.shape[1]) if (i + 1) not in seen or i + 1 == targets[b]]
        y_true = np.array([int(i + 1 == targets[b]) for i in keep])
        assert aucs[b].item() == pytest.approx(roc_auc_score(y_true, scores[b, keep].numpy()), abs=1e-12)


def test_summary_metrics_from_ranks():
    ranks = torch.tensor([1, 2, 5, 11, 100])
    ev = Evaluation(ranks=ranks, aucs=torch.full((5,), 0.5, dtype=torch.float64), users=torch.arange(5), num_candidates=100)
    m = ev.metrics((1, 10))
    assert m["HR@1"] == pytest.approx(0.2) and m["HR@10"] == pytest.approx(0.6)
    expected = (1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5
    assert m["NDCG@10"] == pytest.approx(expected)
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 11 + 1 / 100) / 5)
    assert ev["NDCG@10"] == pytest.approx(expected) and ev["AUC"] == 0.5
    with pytest.raises(KeyError):
        ev["Precision@3"]


class FixedScores(Recommender):
    """A model whose scores are a fixed (U, I) table, looked up by user."""

    def __init__(self, table):
        super().__init__(table.shape[1])
        self.register_buffer("table", table)

    def score_all(self, batch):
        return self.table[batch.users]


def make_batch(scores, targets, excluded):
    return history_batch(excluded, targets=targets, seen=excluded)


def test_evaluate_uses_score_all_and_the_same_rules():
    scores, targets, excluded = random_case(3)
    model = FixedScores(scores)
    batch = make_batch(scores, targets, excluded)
    repeat = (excluded == targets[:, None]).any(1)
    assert repeat.sum() == 1  # this case has one user whose target is a seen item
    with pytest.warns(UserWarning, match="1 users' targets are items they had already seen"):
        ev = evaluate(model, [batch])
    keep = ~repeat
    assert torch.equal(ev.ranks, target_ranks(scores, targets, excluded)[keep])
    assert torch.equal(ev.users, batch.users[keep]) and ev.repeats_dropped == 1
    assert model.training  # mode restored


def repeat_case():
    """Three users, five items; user 1's target (item 2) is also in their history."""
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]] * 3)  # every user: item 1 best, item 5 worst
    targets = torch.tensor([3, 2, 4])
    seen = torch.tensor([[1, 0], [1, 2], [5, 0]])
    return scores, targets, seen


def test_a_repeat_target_is_dropped_by_default_so_the_history_cannot_give_it_away():
    scores, targets, seen = repeat_case()
    model = FixedScores(scores)
    with pytest.warns(UserWarning, match="repeats='rank_seen'"):
        ev = evaluate(model, [make_batch(scores, targets, seen)])
    assert ev.users.tolist() == [0, 2] and ev.repeats_dropped == 1
    assert ev.ranks.tolist() == [2, 4]  # user 0: item 1 removed, 2 above 3; user 2: 1, 2, 3 above 4
    # the old rule ranked user 1's target among its unseen items only: item 1 removed, target first
    assert target_ranks(scores, targets, seen)[1] == 1


def test_rank_seen_removes_nothing_for_anyone():
    scores, targets, seen = repeat_case()
    ev = evaluate(FixedScores(scores), [make_batch(scores, targets, seen)], repeats="rank_seen")
    assert ev.repeats_dropped == 0 and ev.ranks.tolist() == [3, 2, 4]  # ranks over all five items
    assert ev.top_items[:, 0].tolist() == [1, 1, 1]  # a seen item may be recommended
    assert torch.equal(ev.ranks, target_ranks(scores, targets, None))


def test_without_repeats_both_rules_agree_with_the_plain_rule_and_nothing_is_dropped():
    scores, targets, seen = repeat_case()
    seen = torch.tensor([[1, 0], [1, 0], [5, 0]])  # no repeat now
    ev = evaluate(FixedScores(scores), [make_batch(scores, targets, seen)])
    assert ev.repeats_dropped == 0 and torch.equal(ev.ranks, target_ranks(scores, targets, seen))


def test_repeat_rules_are_named_and_every_user_dropped_is_an_error():
    scores, targets, seen = repeat_case()
    batch = make_batch(scores, targets, seen)
    with pytest.raises(ValueError, match="repeats must be one of"):
        evaluate(FixedScores(scores), [batch], repeats="keep")
    all_repeat = make_batch(scores, targets, torch.stack([targets, targets], 1))
    with pytest.raises(ValueError, match="repeats='rank_seen'"):
        evaluate(FixedScores(scores), [all_repeat])


def test_evaluate_rejects_wrong_width():
    class Wrong(FixedScores):
        def score_all(self, batch):
            return torch.zeros(len(batch), self.num_items + 1)  # includes a PAD column

    scores, targets, excluded = random_case(0)
    with pytest.raises(ValueError, match="one column per item"):
        evaluate(Wrong(scores), [make_batch(scores, targets, excluded)])


def test_sampled_negatives_are_unseen_distinct_and_repeatable():
    scores, targets, excluded = random_case(1, items=200, seen=20)
    a = sample_negatives(excluded, targets, 200, 100, torch.Generator().manual_seed(0))
    b = sample_negatives(excluded, targets, 200, 100, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (12, 100)
    for row in range(12):
        drawn = set(a[row].tolist())
        assert len(drawn) == 100
        assert not drawn & (set(excluded[row].tolist()) | {targets[row].item(), PAD_ID})


def test_sampled_evaluation_ranks_among_candidates_and_inflates():
    scores, targets, excluded = random_case(2, items=300, seen=20, levels=1000)
    model = FixedScores(scores)
    batch = make_batch(scores, targets, excluded)
    full = evaluate(model, [batch])
    sampled = evaluate_sampled(model, [batch], num_negatives=100, generator=torch.Generator().manual_seed(0))
    assert sampled.ranks.max() <= 101 and sampled.num_candidates == 101
    assert (sampled.ranks <= full.ranks).all()  # fewer competitors can only raise the target


def test_score_default_and_score_all_default_agree():
    class OnlyScore(Recommender):
        def score(self, batch, items):
            return items.float() * 2.0

    class Neither(Recommender):
        pass

    batch = make_batch(None, torch.tensor([1, 2]), torch.zeros(2, 1, dtype=torch.long))
    assert OnlyScore(5).score_all(batch).tolist() == [[2.0, 4.0, 6.0, 8.0, 10.0]] * 2
    with pytest.raises(NotImplementedError, match="score or score_all"):
        Neither(5).score_all(batch)
    with pytest.raises(NotImplementedError, match="score or score_all"):
        Neither(5).score(batch, torch.ones(2, 1, dtype=torch.long))


# ---------------------------------------------------------------- beyond accuracy


def test_coverage_popularity_percentile_and_long_tail_by_hand():
    from course_lib.metrics import coverage, long_tail_hit_rate, long_tail_items, popularity_percentile

    counts = torch.tensor([0, 50, 40, 30, 20, 10, 5, 5, 1, 0, 0])  # (I + 1,), I = 10; entry 0 is PAD
    top = torch.tensor([[1, 2, 3], [1, 4, 9], [1, 2, 10]])  # three users' top 3
    assert coverage(top, 2, 10) == pytest.approx(3 / 10)  # {1, 2, 4}
    assert coverage(top, 3, 10) == pytest.approx(6 / 10)  # {1, 2, 3, 4, 9, 10}
    # share of items with fewer interactions: item 1 -> 9/10, item 2 -> 8/10, item 4 -> 6/10
    assert popularity_percentile(top, 2, counts) == pytest.approx((0.9 + 0.8 + 0.9 + 0.6 + 0.9 + 0.8) / 6)
    tail = long_tail_items(counts)  # head = ceil(0.2 * 10) = 2 items: 1 and 2
    assert tail.tolist() == [False, False, False] + [True] * 8
    ranks, targets = torch.tensor([1, 15, 3, 2]), torch.tensor([1, 5, 9, 2])  # users 2 and 3 have tail targets
    assert long_tail_hit_rate(ranks, targets, 10, counts) == pytest.approx(0.5)  # ranks 15 and 3
    assert math.isnan(long_tail_hit_rate(ranks[[0, 3]], targets[[0, 3]], 10, counts))  # no tail target at all
    ties = torch.tensor([0, 5, 5, 5, 1])  # I = 4, head = 1 item: the tie is broken by the lower id
    assert long_tail_items(ties).tolist() == [False, False, True, True, True]
    with pytest.raises(ValueError, match="K >= k"):
        coverage(top, 4, 10)


def test_evaluate_keeps_each_users_top_list_without_seen_items():
    scores, targets, excluded = random_case(5, levels=1000)
    for b in range(len(targets)):  # the course's data has no repeats: a target is never a seen item
        excluded[b][excluded[b] == targets[b]] = PAD_ID
    ev = evaluate(FixedScores(scores), [make_batch(scores, targets, excluded)])
    assert ev.top_items.shape == (12, 20) and torch.equal(ev.targets, targets)
    for b in range(len(targets)):
        seen = set(excluded[b].tolist()) - {PAD_ID}
        ranked = [i + 1 for i in scores[b].argsort(descending=True).tolist() if i + 1 not in seen]
        best_scores = scores[b, torch.tensor(ranked[:20]) - 1]  # the 20 best unseen scores (ties in any order)
        assert torch.equal(scores[b, ev.top_items[b] - 1], best_scores)
        assert not seen & set(ev.top_items[b].tolist())
    counts = torch.arange(31)
    summary = ev.beyond_accuracy(counts, k=10)
    assert summary["coverage@10"] == pytest.approx(ev.top_items[:, :10].unique().numel() / 30)
    assert set(summary) == {"coverage@10", "popularity percentile@10", "long-tail HR@10"}


def test_precision_recall_f1_with_one_target_are_hr_rescaled_and_match_scikit_learn():
    from sklearn.metrics import f1_score, precision_score, recall_score

    from course_lib.metrics import precision_recall_f1

    scores, targets, excluded = random_case(7, levels=1000)
    for b in range(len(targets)):
        excluded[b][excluded[b] == targets[b]] = PAD_ID
    ev = evaluate(FixedScores(scores), [make_batch(scores, targets, excluded)])
    k = 5
    per_user = {"Precision": [], "Recall": [], "F1": []}
    for b in range(len(targets)):
        recommended = np.zeros(30, dtype=int)
        recommended[ev.top_items[b, :k].numpy() - 1] = 1  # the user's top-k list as 0/1 predictions
        relevant = np.zeros(30, dtype=int)
        relevant[int(targets[b]) - 1] = 1
        per_user["Precision"].append(precision_score(relevant, recommended, zero_division=0))
        per_user["Recall"].append(recall_score(relevant, recommended, zero_division=0))
        per_user["F1"].append(f1_score(relevant, recommended, zero_division=0))
    ours = precision_recall_f1(ev.ranks, k)
    for name, values in per_user.items():
        assert ours[f"{name}@{k}"] == pytest.approx(np.mean(values))
    assert ours[f"Recall@{k}"] == pytest.approx(hit_rate(ev.ranks, k))
