"""No model sees a validation or test item during training: a leakage test on the benchmark's real path.

Every entry of ``course_lib.bench.MODELS``, on every dataset it trains on and in both modes, is
trained through its own ``train`` with the shared loop's ``fit`` replaced by a recorder: the test
sees exactly the training examples and validation batches ``fit`` would receive. It asserts

* no training input or target of a user is that user's validation or test item, and every one of
  them is one of the user's training events;
* the validation inputs hold no test item (and no validation target);
* replacing every validation and test item leaves what ``fit`` receives bit-for-bit unchanged;

and a negative control swaps in windows cut from the *whole* sequence (the classic bug) and
checks that the detector fires, so the test is known to watch the path the benchmark takes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from factories import random_split

from course_lib import PAD_ID
from course_lib.bench import MODELS, BenchData, load_dataset
from course_lib.bench import run as bench_run
from course_lib.data import SequenceSplit, evaluation_batches, training_pairs, training_windows
from course_lib.training import TrainResult

CASES = [(entry.name, dataset, mode) for entry in MODELS for dataset in entry.datasets for mode in ("notebook", "full")]


@pytest.fixture(scope="module")
def datasets() -> dict[str, BenchData]:
    return {name: load_dataset(name) for name in ("ml100k", "shopworld")}


@dataclasses.dataclass
class Received:
    """What the shared loop was given in one benchmark run."""

    model: torch.nn.Module
    examples: object | None = None  # TrainingExamples, or None when nothing was trained
    valid: list | None = None


def run_entry(name: str, data: BenchData, mode: str, monkeypatch: pytest.MonkeyPatch) -> Received:
    """Train one benchmark entry with ``fit`` replaced by a recorder."""
    seen: dict = {}

    def recorder(model, examples, valid_batches, *, config, device, cache=None):
        seen.update(examples=examples, valid=list(valid_batches))
        return TrainResult(best_epoch=0, best_score=0.0, epochs_run=0, seconds=0.0)

    monkeypatch.setattr(bench_run, "fit", recorder)
    entry = next(m for m in MODELS if m.name == name)
    run = entry.train(data, mode, 0, torch.device("cpu"))
    return Received(run.model, seen.get("examples"), seen.get("valid"))


def held_out(split: SequenceSplit, user: int) -> set[int]:
    """The validation and test items of a user (none for users too short to be evaluated)."""
    sequence = split.sequences[user]
    return set(sequence[-2:].tolist()) if len(sequence) >= 3 else set()


def items_per_user(examples) -> dict[int, set[int]]:
    """Every item id a user's training examples contain, as input or as target."""
    found: dict[int, set[int]] = {}
    for field in (examples.history, examples.seq_targets, examples.targets):
        if field is None:
            continue
        field = field if field.ndim == 2 else field[:, None]  # (N, L) or (N, 1)
        users = examples.users[:, None].expand_as(field)
        keep = field != PAD_ID
        for user, item in zip(users[keep].tolist(), field[keep].tolist()):
            found.setdefault(user, set()).add(item)
    return found


def leaks(split: SequenceSplit, examples) -> list[int]:
    """Users whose training examples hold one of their validation or test items."""
    return sorted(u for u, items in items_per_user(examples).items() if items & held_out(split, u))


def with_new_holdout(data: BenchData, seed: int) -> BenchData:
    """The same data with every evaluable user's validation and test items replaced by other items."""
    rng = np.random.default_rng(seed)
    sequences = []
    for sequence in data.split.sequences:
        sequence = sequence.copy()
        if len(sequence) >= 3:
            sequence[-2:] = rng.integers(1, data.split.num_items + 1, size=2)
        sequences.append(sequence)
    split = dataclasses.replace(data.split, sequences=tuple(sequences))
    length = data.valid[0].history.shape[1]
    valid, test = evaluation_batches(split, "valid", max_len=length), evaluation_batches(split, "test", max_len=length)
    return dataclasses.replace(data, split=split, valid=valid, test=test)


@pytest.mark.parametrize("name, dataset, mode", CASES, ids=[f"{n}-{d}-{m}" for n, d, m in CASES])
def test_what_fit_receives_holds_no_validation_or_test_item(name, dataset, mode, datasets, monkeypatch):
    data = datasets[dataset]
    split = data.split
    assert all(len(np.unique(s)) == len(s) for s in split.sequences), "no user repeats an item in these datasets"
    received = run_entry(name, data, mode, monkeypatch)
    if received.examples is None:  # counted, not trained: popularity reads training events only
        train_counts = torch.from_numpy(split.train_item_counts()).float()
        assert torch.equal(received.model.counts, train_counts)
        return
    assert not leaks(split, received.examples), f"{name}: users see their validation/test item in training"
    for user, items in items_per_user(received.examples).items():
        assert items <= set(split.train_sequence(user).tolist()), f"{name}: user {user} trains on a non-training event"
    for batch in received.valid:  # validation input = training events only
        for row, user in enumerate(batch.users.tolist()):
            test_item = int(split.sequences[user][-1])
            assert test_item not in batch.history[row].tolist() and test_item not in batch.seen[row].tolist()
            assert int(batch.targets[row]) == int(split.sequences[user][-2])
            assert int(batch.targets[row]) not in batch.history[row].tolist()


@pytest.mark.parametrize("name, dataset, mode", CASES, ids=[f"{n}-{d}-{m}" for n, d, m in CASES])
def test_changing_validation_and_test_items_changes_nothing_fit_receives(name, dataset, mode, datasets, monkeypatch):
    data = datasets[dataset]
    changed = with_new_holdout(data, seed=1)
    assert any(not np.array_equal(a, b) for a, b in zip(data.split.sequences, changed.split.sequences))
    before, after = run_entry(name, data, mode, monkeypatch), run_entry(name, changed, mode, monkeypatch)
    if before.examples is None:
        assert torch.equal(before.model.counts, after.model.counts)
        return
    for field in ("users", "history", "history_times", "seq_targets", "targets"):
        a, b = getattr(before.examples, field), getattr(after.examples, field)
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b), f"{name}: training field {field!r} depends on a validation/test item"
    for x, y in zip(before.valid, after.valid):  # validation inputs do not depend on the test items either
        assert torch.equal(x.history, y.history) and torch.equal(x.seen, y.seen)


def whole_sequence_windows(split: SequenceSplit, *, max_len: int, stride: int | None = None) -> object:
    """The classic bug: windows over each user's *whole* sequence, validation and test events included."""
    whole = dataclasses.replace(
        split,
        sequences=tuple(np.concatenate([s, s[-2:]]) if len(s) >= 3 else s for s in split.sequences),
        times=tuple(np.concatenate([t, t[-2:]]) if len(t) >= 3 else t for t in split.times),
    )  # train_sequence (all but the last two events) now ends with the held-out items
    return training_windows(whole, max_len=max_len, stride=stride)


@pytest.mark.parametrize("name", ["SASRec", "DIN", "BERT4Rec", "Capstone"])
def test_negative_control_the_detector_sees_a_leak_on_the_benchmarks_path(name, datasets, monkeypatch):
    """Cutting windows from the whole sequence inside the benchmark must be caught by the test above."""
    monkeypatch.setattr(bench_run, "training_windows", whole_sequence_windows)
    data = datasets["shopworld"]
    received = run_entry(name, data, "notebook", monkeypatch)
    assert leaks(data.split, received.examples), "the leak detector must flag held-out items on the benchmark's path"


WINDOW_SETTINGS = [(5, 1), (5, 3), (8, 8), (8, None)]


@pytest.mark.parametrize("max_len, stride", WINDOW_SETTINGS)
def test_windows_and_pairs_of_any_setting_ignore_validation_and_test_items(max_len, stride):
    """The split's own builders, for settings the benchmark does not use (every prefix, overlaps, include_first)."""
    split = random_split(0, users=30, items=40, events=(2, 25))  # some users too short to be evaluated
    rng = np.random.default_rng(1)
    changed = dataclasses.replace(split, sequences=tuple(
        np.concatenate([s[:-2], rng.integers(1, split.num_items + 1, size=2)]) if len(s) >= 3 else s for s in split.sequences
    ))
    for build in (
        lambda sp: training_windows(sp, max_len=max_len, stride=stride),
        lambda sp: training_windows(sp, max_len=max_len, stride=stride, include_first=True),
        training_pairs,
    ):
        before, after = build(split), build(changed)
        assert not leaks(split, before)
        for field in ("users", "history", "history_times", "seq_targets", "targets"):
            a, b = getattr(before, field), getattr(after, field)
            assert (a is None) == (b is None) and (a is None or torch.equal(a, b)), field


def test_evaluation_inputs_hold_no_evaluation_target(datasets):
    """The validation input holds no validation target, the test input no test target."""
    split = datasets["ml100k"].split
    for stage, cut in (("valid", 2), ("test", 1)):
        for batch in evaluation_batches(split, stage):
            targets = torch.tensor([split.sequences[u][-cut] for u in batch.users.tolist()])
            assert torch.equal(batch.targets, targets)
            assert not (batch.seen == batch.targets[:, None]).any()
            assert not (batch.history == batch.targets[:, None]).any()
