"""No model sees a validation or test item during training: a leakage test on the batches.

Checked on the exact training data the benchmark feeds each model (MF's pairs, the GRU's and
SASRec's windows, in both modes), on ML-100K itself and on a synthetic split where changing
every validation and test item must leave the training batches bit-for-bit unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import PAD_ID
from course_lib.bench import gru_settings, sasrec_settings, sequence_training_data
from course_lib.data import SequenceSplit, evaluation_batches, temporal_leave_one_out, training_pairs, training_windows


def synthetic_split(seed: int = 0, users: int = 30, items: int = 40) -> SequenceSplit:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        n = int(rng.integers(2, 25))  # some users too short to be evaluated
        chosen = rng.choice(np.arange(1, items + 1), size=n, replace=False)
        rows += [(user, int(item), 4, t) for t, item in enumerate(chosen)]
    return temporal_leave_one_out(pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]))


def benchmark_builders():
    """The training data the benchmark feeds each trainable model (name, split -> examples)."""
    builders = [("MF pairs", training_pairs)]
    for name, settings in (("SASRec", sasrec_settings), ("GRU", gru_settings)):
        for mode in ("notebook", "full"):
            builders.append((f"{name} {mode}", lambda split, s=settings(mode): sequence_training_data(split, s)))
    return builders


def training_data_builders():
    """The benchmark's training data and other window settings (name, split -> examples)."""
    builders = benchmark_builders()
    for max_len, stride in ((5, 1), (5, 3), (8, 8)):
        builders.append((f"windows L={max_len} stride={stride}", lambda split, m=max_len, s=stride: training_windows(split, max_len=m, stride=s)))
    builders.append(("windows include_first", lambda split: training_windows(split, max_len=6, stride=2, include_first=True)))
    return builders


def per_user_items(examples) -> dict[int, set[int]]:
    """Every item id a user's training examples contain, as input or as target."""
    users, items = [], []
    for field in (examples.history, examples.seq_targets, examples.targets):
        if field is None:
            continue
        field = field if field.ndim == 2 else field[:, None]  # (N, L) or (N, 1)
        users.append(examples.users[:, None].expand_as(field).reshape(-1))
        items.append(field.reshape(-1))
    users, items = torch.cat(users), torch.cat(items)
    keep = items != PAD_ID
    pairs = np.unique(torch.stack([users[keep], items[keep]], dim=1).numpy(), axis=0)  # distinct (user, item)
    seen: dict[int, set[int]] = {}
    for user, item in pairs.tolist():
        seen.setdefault(user, set()).add(item)
    return seen


def with_new_holdout(split: SequenceSplit, num_items: int, seed: int) -> SequenceSplit:
    """The same split with every evaluable user's validation and test items replaced."""
    rng = np.random.default_rng(seed)
    sequences = []
    for seq in split.sequences:
        seq = seq.copy()
        if len(seq) >= 3:
            seq[-2:] = rng.integers(1, num_items + 1, size=2)
        sequences.append(seq)
    return SequenceSplit(tuple(sequences), split.times, split.rows, split.user_ids, split.item_ids)


@pytest.mark.parametrize("name, build", training_data_builders(), ids=[n for n, _ in training_data_builders()])
def test_changing_validation_and_test_items_leaves_training_batches_unchanged(name, build):
    split = synthetic_split()
    changed = with_new_holdout(split, split.num_items, seed=1)
    assert any(not np.array_equal(a, b) for a, b in zip(split.sequences, changed.sequences))
    before, after = build(split), build(changed)
    for field in ("users", "history", "history_times", "seq_targets", "targets"):
        a, b = getattr(before, field), getattr(after, field)
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b), f"{name}: training field {field!r} depends on a validation/test item"
    batches_a = list(before.batches(7, torch.Generator().manual_seed(0)))
    batches_b = list(after.batches(7, torch.Generator().manual_seed(0)))
    assert all(torch.equal(x.history, y.history) for x, y in zip(batches_a, batches_b))


@pytest.fixture(scope="module")
def ml_split() -> SequenceSplit:
    from course_lib.data import load_movielens_100k

    ml = load_movielens_100k(verbose=False)
    return temporal_leave_one_out(ml.interactions, catalogue=ml.items.index)


def leaking_users(split: SequenceSplit, examples) -> list[int]:
    seen = per_user_items(examples)
    return [u for u, items in seen.items() if len(split.sequences[u]) >= 3 and set(split.sequences[u][-2:].tolist()) & items]


def test_the_leak_detector_catches_windows_over_the_full_sequence():
    """Negative control: windows cut from the *whole* sequence (a classic bug) are caught."""
    split = synthetic_split()
    full = SequenceSplit(
        tuple(np.concatenate([s, s[-2:]]) for s in split.sequences),  # train_sequence now ends with the held-out items
        tuple(np.concatenate([t, t[-2:]]) for t in split.times),
        split.rows, split.user_ids, split.item_ids,
    )
    assert leaking_users(split, training_windows(full, max_len=5)), "the detector must flag held-out items"


@pytest.mark.parametrize("name, build", benchmark_builders(), ids=[n for n, _ in benchmark_builders()])
def test_no_training_example_contains_a_users_validation_or_test_item(name, build, ml_split):
    """On ML-100K (each user rates an item once) no training batch holds a held-out item of its user."""
    split = ml_split
    assert all(len(np.unique(s)) == len(s) for s in split.sequences), "ML-100K has no repeated (user, item) events"
    examples = build(split)
    seen = per_user_items(examples)
    leaks = leaking_users(split, examples)
    assert not leaks, f"{name}: users {leaks[:5]} see their validation/test item in training"
    assert all(items <= set(split.train_sequence(u).tolist()) for u, items in seen.items())


def test_evaluation_inputs_hold_no_evaluation_target(ml_split):
    """The validation input holds no validation target, the test input no test target."""
    split = ml_split
    for stage, cut in (("valid", 2), ("test", 1)):
        for batch in evaluation_batches(split, stage):
            targets = torch.tensor([split.sequences[u][-cut] for u in batch.users.tolist()])
            assert torch.equal(batch.targets, targets)
            assert not (batch.seen == batch.targets[:, None]).any()
            assert not (batch.history == batch.targets[:, None]).any()
