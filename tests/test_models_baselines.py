"""Popularity and matrix factorization behind the shared interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import random_split

from course_lib import PAD_ID
from course_lib.data import evaluation_batches, training_pairs, training_windows
from course_lib.metrics import evaluate
from course_lib.models import MatrixFactorization, MFConfig, Popularity, Recommender


def small_split(seed=0):
    return random_split(seed, users=40, items=25, events=(4, 12))


def test_popularity_counts_training_events_only():
    split = small_split()
    pop = Popularity.from_split(split)
    expected = np.zeros(split.num_items + 1)
    for u in range(split.num_users):
        for item in split.sequences[u][:-2]:
            expected[item] += 1
    assert pop.counts.tolist() == expected.tolist()
    batch = evaluation_batches(split, "test")[0]
    assert pop.score_all(batch).shape == (len(batch), split.num_items)
    items = torch.randint(1, split.num_items + 1, (len(batch), 7))
    assert torch.equal(pop.score(batch, items), pop.score_all(batch).gather(1, items - 1))
    assert not pop.trainable
    with pytest.raises(NotImplementedError, match="from_split"):
        pop.loss(batch)


def test_validation_and_test_targets_do_not_change_popularity():
    split = small_split(1)
    base = Popularity.from_split(split).counts.clone()
    sequences = list(split.sequences)
    sequences[0] = sequences[0].copy()
    sequences[0][-1] = 1 if sequences[0][-1] != 1 else 2  # change a test target
    changed = type(split)(tuple(sequences), split.times, split.rows, split.user_ids, split.item_ids)
    assert torch.equal(Popularity.from_split(changed).counts, base)


@pytest.mark.parametrize("seed", [0, 1])
def test_mf_score_and_score_all_agree_and_shapes(seed):
    torch.manual_seed(seed)
    split = small_split(seed)
    mf = MatrixFactorization(MFConfig(split.num_users, split.num_items, d_model=8))
    batch = evaluation_batches(split, "valid")[0]
    all_scores = mf.score_all(batch)
    assert all_scores.shape == (len(batch), split.num_items)
    items = torch.randint(1, split.num_items + 1, (len(batch), 5))
    torch.testing.assert_close(mf.score(batch, items), all_scores.gather(1, items - 1))
    assert mf.item_embedding.weight[PAD_ID].abs().sum() == 0


def test_mf_loss_is_full_softmax_cross_entropy_and_learns():
    torch.manual_seed(0)
    split = small_split(2)
    mf = MatrixFactorization(MFConfig(split.num_users, split.num_items, d_model=16))
    pairs = training_pairs(split)
    batch = next(pairs.batches(32, torch.Generator().manual_seed(0)))
    logits = mf.user_embedding(batch.users) @ mf.item_embedding.weight[1:].T
    manual = -torch.log_softmax(logits, 1).gather(1, (batch.targets - 1)[:, None]).mean()
    torch.testing.assert_close(mf.loss(batch), manual)
    # windows and pairs give the same positives when every event is a target once
    windows = training_windows(split, max_len=50, include_first=True)
    full_w = next(windows.batches(10_000, shuffle=False))
    full_p = next(pairs.batches(10_000, shuffle=False))
    torch.testing.assert_close(mf.loss(full_w), mf.loss(full_p))
    optimizer = torch.optim.Adam(mf.parameters(), lr=0.05)
    before = mf.loss(full_p).item()
    for _ in range(50):
        optimizer.zero_grad()
        mf.loss(full_p).backward()
        optimizer.step()
    assert mf.loss(full_p).item() < before - 0.5


def test_models_hold_no_device_and_follow_the_batch():
    split = small_split()
    for model in (Popularity.from_split(split), MatrixFactorization(MFConfig(split.num_users, split.num_items, d_model=4))):
        assert isinstance(model, Recommender)
        assert not any(isinstance(v, torch.device) for v in vars(model).values())
        ev = evaluate(model, evaluation_batches(split, "test"), device="cpu")
        assert ev.ranks.min() >= 1 and ev.ranks.max() <= split.num_items


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mf_on_cuda_matches_cpu():
    torch.manual_seed(0)
    split = small_split()
    mf = MatrixFactorization(MFConfig(split.num_users, split.num_items, d_model=8))
    batches = evaluation_batches(split, "test")
    cpu = evaluate(mf, batches, device="cpu").ranks
    gpu = evaluate(mf.to("cuda"), batches, device="cuda").ranks
    assert torch.equal(cpu, gpu)
