"""Implicit feedback, temporal leave-one-out, padding, and the batches built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import PAD_ID
from course_lib.data import (
    Batch,
    evaluation_batches,
    pad_sequences,
    temporal_leave_one_out,
    timestamp_tie_fraction,
    training_pairs,
    training_windows,
)


def toy():
    # user 7: items 30, 10, 20 share timestamp 5 -> file order decides; user 3 has 2 events only
    return pd.DataFrame(
        {
            "user": [7, 7, 3, 7, 7, 3, 7, 7],
            "item": [30, 10, 40, 20, 50, 10, 60, 70],
            "rating": [5, 1, 3, 4, 2, 5, 3, 4],
            "timestamp": [5, 5, 1, 5, 2, 2, 9, 7],
        }
    )


def test_stable_sort_breaks_ties_by_file_order_and_remaps_ids():
    split = temporal_leave_one_out(toy())
    assert split.num_users == 2 and split.num_items == 7
    assert split.user_ids.tolist() == [3, 7]
    assert split.item_ids.tolist() == [-1, 10, 20, 30, 40, 50, 60, 70]
    user7 = split.item_ids[split.sequences[1]].tolist()
    assert user7 == [50, 30, 10, 20, 70, 60]  # time 2, then the three at time 5 in file order, 7, 9
    assert split.times[1].tolist() == [2, 5, 5, 5, 7, 9]
    assert split.rows[1].tolist() == [4, 0, 1, 3, 7, 6]
    assert PAD_ID not in np.concatenate(split.sequences)


def test_leave_one_out_cut():
    split = temporal_leave_one_out(toy())
    raw = split.item_ids
    assert split.evaluable.tolist() == [False, True]  # user 3 has only two events
    assert raw[split.train_sequence(1)].tolist() == [50, 30, 10, 20]
    history, times, target, when = split.stage_input(1, "valid")
    assert raw[history].tolist() == [50, 30, 10, 20] and raw[target] == 70 and when == 7
    history, times, target, when = split.stage_input(1, "test")
    assert raw[history].tolist() == [50, 30, 10, 20, 70] and raw[target] == 60 and when == 9
    assert raw[split.train_sequence(0)].tolist() == [40, 10]  # short user: training only
    counts = split.train_item_counts()
    assert counts[PAD_ID] == 0 and counts.sum() == 6  # 4 + 2 training events
    course_id = {int(raw): i for i, raw in enumerate(split.item_ids) if i != PAD_ID}  # original id -> course id
    assert counts[course_id[10]] == 2 and counts[course_id[60]] == 0


def test_catalogue_keeps_items_without_events():
    split = temporal_leave_one_out(toy(), catalogue=[10, 20, 30, 40, 50, 60, 70, 80])
    assert split.num_items == 8
    with pytest.raises(ValueError, match="catalogue"):
        temporal_leave_one_out(toy(), catalogue=[10, 20])


def test_tie_fraction():
    df = toy()
    # user 7 at time 5 (3 events) share; user 3 none; user 7 others distinct
    assert timestamp_tie_fraction(df) == pytest.approx(3 / 8)


@pytest.mark.parametrize("align", ["left", "right"])
def test_pad_sequences(align):
    out = pad_sequences([np.array([1, 2, 3, 4]), np.array([5]), np.array([], dtype=np.int64)], 3, align=align)
    if align == "right":
        assert out.tolist() == [[2, 3, 4], [0, 0, 5], [0, 0, 0]]
    else:
        assert out.tolist() == [[2, 3, 4], [5, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="align"):
        pad_sequences([np.array([1])], 2, align="middle")


def long_toy(seed=0, users=20):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        n = int(rng.integers(1, 15))
        items = rng.choice(np.arange(1, 40), size=n, replace=False)
        times = np.sort(rng.integers(0, 10, n))
        rows += [(u, int(i), 1, int(t)) for i, t in zip(items, times)]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


@pytest.mark.parametrize("stage", ["valid", "test"])
def test_evaluation_batches(stage):
    split = temporal_leave_one_out(long_toy())
    batches = evaluation_batches(split, stage, max_len=4, batch_size=6)
    users = torch.cat([b.users for b in batches])
    assert users.tolist() == np.flatnonzero(split.evaluable).tolist()
    for batch in batches:
        assert batch.history.shape[1] == 4
        for row, u in enumerate(batch.users.tolist()):
            history, times, target, when = split.stage_input(u, stage)
            assert batch.targets[row] == target and batch.target_times[row] == when
            is_real = batch.history[row] != PAD_ID
            assert batch.history[row][is_real].tolist() == history[-4:].tolist()  # newest last (right-aligned)
            assert batch.history_times[row][is_real].tolist() == times[-4:].tolist()
            seen = batch.seen[row][batch.seen[row] != PAD_ID].tolist()
            assert seen == history.tolist()  # the full input history, not cut to max_len


def test_training_windows_cover_training_targets_and_never_leak():
    split = temporal_leave_one_out(long_toy(1, users=30))
    for stride, include_first in ((None, False), (2, False), (1, True)):
        examples = training_windows(split, max_len=3, stride=stride, include_first=include_first)
        held_out = {}
        for u in np.flatnonzero(split.evaluable):
            held_out[int(u)] = {int(split.sequences[u][-1]), int(split.sequences[u][-2])}
        for row in range(len(examples)):
            u = int(examples.users[row])
            items = set(examples.history[row].tolist()) | set(examples.seq_targets[row].tolist())
            assert not items & held_out.get(u, set()), "a validation or test item leaked into training"
            keep = examples.seq_targets[row] != PAD_ID
            train = split.train_sequence(u).tolist()
            hist = examples.history[row].tolist()
            targ = examples.seq_targets[row].tolist()
            for l in range(3):  # each target follows its input in the user's training sequence
                if keep[l] and hist[l] != PAD_ID:
                    assert train[train.index(hist[l]) + 1] == targ[l]
        # non-overlapping windows: every training event except each user's first is a target once
        targets = examples.seq_targets[examples.seq_targets != PAD_ID]
        expected = sum(max(len(split.train_sequence(u)) - (0 if include_first else 1), 0) for u in range(split.num_users))
        if stride is None or include_first is False and stride is None:
            assert len(targets) == expected
        if include_first and stride == 1:
            assert len(set(targets.tolist())) >= 1


def test_training_windows_include_first_counts_every_event_once():
    split = temporal_leave_one_out(long_toy(2))
    examples = training_windows(split, max_len=50, include_first=True)
    targets = examples.seq_targets[examples.seq_targets != PAD_ID]
    assert len(targets) == sum(len(split.train_sequence(u)) for u in range(split.num_users))


def test_training_pairs_and_shuffled_batches_are_repeatable():
    split = temporal_leave_one_out(long_toy(3))
    pairs = training_pairs(split)
    assert len(pairs) == sum(len(split.train_sequence(u)) for u in range(split.num_users))
    first = [b.targets.tolist() for b in pairs.batches(7, torch.Generator().manual_seed(5))]
    second = [b.targets.tolist() for b in pairs.batches(7, torch.Generator().manual_seed(5))]
    assert first == second
    assert sorted(sum(first, [])) == sorted(pairs.targets.tolist())
    batch = next(pairs.batches(7, torch.Generator().manual_seed(5)))
    assert isinstance(batch, Batch) and batch.history.shape == (7, 0)


def test_batch_checks_shapes_and_moves():
    with pytest.raises(ValueError, match="rows"):
        Batch(users=torch.zeros(3, dtype=torch.long), history=torch.zeros(2, 4, dtype=torch.long),
              history_times=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="history_times"):
        Batch(users=torch.zeros(2, dtype=torch.long), history=torch.zeros(2, 4, dtype=torch.long),
              history_times=torch.zeros(2, 3, dtype=torch.long))
    b = Batch(users=torch.zeros(2, dtype=torch.long), history=torch.tensor([[0, 3], [1, 2]]),
              history_times=torch.zeros(2, 2, dtype=torch.long))
    assert b.to("cpu").history.equal(b.history) and len(b) == 2
    assert b.excluded is b.history
