"""ScoreEnsemble: the mean of the members' log-softmax, checked by hand; train_ensemble's seeds and errors."""

from __future__ import annotations

import pytest
import torch
from factories import history_batch, walk_split

from course_lib.bench import BenchData, BenchModel, Settings, Windows, build_sasrec
from course_lib.bench.run import member_seed, train_ensemble
from course_lib.data import Batch
from course_lib.data.split import evaluation_batches
from course_lib.models.base import Recommender
from course_lib.models.ensemble import ScoreEnsemble
from course_lib.models.sasrec import SASRecConfig
from course_lib.training import TrainConfig


class FixedScores(Recommender):
    """A recommender whose scores are a fixed (B, I) table."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__(scores.shape[1])
        self.table = scores

    def score_all(self, batch: Batch) -> torch.Tensor:
        return self.table


def toy_batch(rows: int) -> Batch:
    return history_batch(torch.ones(rows, 3, dtype=torch.long))


def tiny_sasrec_settings(data: BenchData, mode: str) -> Settings:
    config = SASRecConfig(data.split.num_items, max_len=8, d_model=8, n_layers=1, n_heads=2, dropout=0.1)
    return Settings(config, TrainConfig(epochs=1, lr=1e-2, batch_size=16, patience=1), Windows(max_len=8))


TINY_SASREC = BenchModel("tiny SASRec", tiny_sasrec_settings, build_sasrec)


def test_scores_are_the_mean_log_probability_by_hand():
    a = torch.tensor([[0.0, 1.0, 2.0]])
    b = torch.tensor([[10.0, 10.0, 0.0]])
    ensemble = ScoreEnsemble([FixedScores(a), FixedScores(b)])
    by_hand = []
    for row_a, row_b in zip(a[0].tolist(), b[0].tolist()):
        log_pa = row_a - torch.logsumexp(a[0], 0).item()
        log_pb = row_b - torch.logsumexp(b[0], 0).item()
        by_hand.append((log_pa + log_pb) / 2)
    torch.testing.assert_close(ensemble.score_all(toy_batch(1)), torch.tensor([by_hand]))
    assert ensemble.score_all(toy_batch(1)).exp().sum() <= 1  # a geometric mean of distributions sums to <= 1
    torch.testing.assert_close(ensemble.score(toy_batch(1), torch.tensor([[3, 1]])), torch.tensor([[by_hand[2], by_hand[0]]]))


def test_ranking_is_the_mean_raw_score_ranking():
    g = torch.Generator().manual_seed(1)
    members = [torch.randn(5, 9, generator=g) * scale + shift for scale, shift in [(1.0, 0.0), (3.0, 50.0), (0.5, -7.0)]]
    ensemble = ScoreEnsemble([FixedScores(s) for s in members]).score_all(toy_batch(5))
    raw_mean = torch.stack(members).mean(dim=0)
    torch.testing.assert_close(ensemble - ensemble[:, :1], raw_mean - raw_mean[:, :1])  # equal up to a per-row constant


def test_one_member_ranks_like_the_member():
    scores = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    ensemble = ScoreEnsemble([FixedScores(scores)])
    assert torch.equal(ensemble.score_all(toy_batch(4)).argsort(dim=1), scores.argsort(dim=1))


def test_bad_members_and_training_are_refused():
    with pytest.raises(ValueError, match="one or more Recommender"):
        ScoreEnsemble([])
    with pytest.raises(ValueError, match="same catalogue"):
        ScoreEnsemble([FixedScores(torch.zeros(1, 3)), FixedScores(torch.zeros(1, 4))])
    with pytest.raises(NotImplementedError, match="train each member"):
        ScoreEnsemble([FixedScores(torch.zeros(1, 3))]).loss(toy_batch(1))
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        train_ensemble(TINY_SASREC, 0, None, "notebook", 0, torch.device("cpu"))


def test_train_ensemble_trains_distinct_members():
    split = walk_split(users=20, items=12, events=10)
    data = BenchData("toy", split, evaluation_batches(split, "valid", max_len=8), evaluation_batches(split, "test", max_len=8))
    run = train_ensemble(TINY_SASREC, 3, data, "notebook", 1, torch.device("cpu"))
    assert [member_seed(1, m) for m in range(3)] == [1000, 1001, 1002]
    assert isinstance(run.model, ScoreEnsemble) and len(run.model.members) == 3 and run.epochs == 1
    first, second = (m.item_encoder.weight for m in run.model.members[:2])
    assert not torch.equal(first, second)  # different seeds, different members
    assert run.model.score_all(data.test[0]).shape == (len(data.test[0]), split.num_items)
