"""The shared training loop: early stopping, best weights restored, repeatable, generator passed on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from factories import split_of

from course_lib.data import evaluation_batches, training_pairs
from course_lib.metrics import evaluate
from course_lib.models import MatrixFactorization, MFConfig, Recommender
from course_lib.training import TrainConfig, fit, learning_rate_factor


def split(seed=0, users=60):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        group = u % 3  # three taste groups, so MF can learn something
        pool = np.arange(1 + group * 10, 11 + group * 10)
        rows += [(u, int(i), t) for t, i in enumerate(rng.choice(pool, size=8, replace=False))]
    return split_of(rows)


def run(seed=0, epochs=8, patience=100, lr=0.05):
    torch.manual_seed(seed)
    sp = split()
    mf = MatrixFactorization(MFConfig(sp.num_users, sp.num_items, d_model=8))
    valid = evaluation_batches(sp, "valid")
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=32, patience=patience, progress=False)
    result = fit(mf, training_pairs(sp), valid, config=config, device="cpu")
    return mf, result, valid


def test_fit_restores_the_best_epoch_and_improves():
    mf, result, valid = run()
    assert result.epochs_run == 8 and len(result.valid_scores) == 8
    assert result.best_score == max([result.best_score, *result.valid_scores])
    assert evaluate(mf, valid)["NDCG@10"] == result.best_score  # the restored weights give the best score
    assert result.best_epoch >= 1 and result.losses[-1] < result.losses[0]


def test_early_stopping_on_patience():
    mf, result, valid = run(epochs=50, patience=2, lr=0.5)
    assert result.stopped_because == "patience"
    assert result.epochs_run == result.best_epoch + 2


def test_same_seed_same_weights():
    a, ra, _ = run(seed=3, epochs=3)
    b, rb, _ = run(seed=3, epochs=3)
    assert ra.losses == rb.losses
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_the_loop_passes_its_generator_to_loss():
    seen = []

    class Recorder(Recommender):
        def __init__(self, num_items):
            super().__init__(num_items)
            self.w = torch.nn.Parameter(torch.zeros(num_items))

        def score_all(self, batch):
            return self.w.expand(len(batch), -1)

        def loss(self, batch, *, generator=None):
            seen.append(generator)
            negatives = torch.randint(1, self.num_items + 1, (len(batch),), generator=generator)
            return (self.w[negatives - 1] - self.w[batch.targets - 1]).mean()

    sp = split()
    fit(Recorder(sp.num_items), training_pairs(sp), evaluation_batches(sp, "valid"),
        config=TrainConfig(epochs=2, batch_size=64, progress=False), device="cpu")
    assert seen and all(isinstance(g, torch.Generator) for g in seen) and len({id(g) for g in seen}) == 1


class StepRecorder(Recommender):
    """loss = w, so every Adam step moves w by about the learning rate: the steps record the schedule."""

    def __init__(self, num_items: int) -> None:
        super().__init__(num_items)
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.values: list[float] = []

    def score_all(self, batch):
        return torch.zeros(len(batch), self.num_items)  # validation never improves: nothing to restore

    def loss(self, batch, *, generator=None):
        self.values.append(self.w.item())
        return self.w.sum()


def test_learning_rate_factor_by_hand():
    factor = [learning_rate_factor(s, warmup_steps=4, total_steps=12, schedule="cosine") for s in range(12)]
    np.testing.assert_allclose(factor[:4], [0.25, 0.5, 0.75, 1.0])  # linear warm-up to the full rate
    assert factor[4] == 1.0 and all(a >= b for a, b in zip(factor[3:], factor[4:])), "then it only decreases"
    np.testing.assert_allclose(factor[8], 0.5 * (1 + math.cos(math.pi * 4 / 8)))  # halfway: 0.5
    assert learning_rate_factor(12, warmup_steps=4, total_steps=12, schedule="cosine") == 0.0
    constant = [learning_rate_factor(s, warmup_steps=2, total_steps=12, schedule="constant") for s in range(5)]
    assert constant == [0.5, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("warmup, schedule", [(0.0, "constant"), (0.5, "cosine"), (1.0, "constant"), (0.0, "cosine")])
def test_fit_owns_the_optimizer_and_follows_the_schedule(warmup, schedule):
    sp = split()
    pairs = training_pairs(sp)  # 360 pairs: 6 steps of 64 per epoch
    model = StepRecorder(sp.num_items)
    config = TrainConfig(epochs=3, lr=0.1, batch_size=64, patience=10, warmup_epochs=warmup, schedule=schedule, progress=False)
    fit(model, pairs, evaluation_batches(sp, "valid"), config=config, device="cpu")
    steps = -np.diff(model.values)  # how far each optimizer step moved w: lr x factor (Adam with a constant gradient)
    per_epoch = math.ceil(len(pairs) / 64)
    warmup_steps = max(1, round(warmup * per_epoch)) if warmup > 0 else 0
    expected = [0.1 * learning_rate_factor(s, warmup_steps=warmup_steps, total_steps=3 * per_epoch, schedule=schedule)
                for s in range(len(steps))]
    np.testing.assert_allclose(steps, expected, rtol=1e-4, atol=1e-7)


def test_train_config_and_fit_refuse_what_cannot_work():
    for bad, message in [
        (dict(epochs=0), "epochs must be a positive int"), (dict(batch_size=-1), "batch_size"), (dict(lr=0.0), "lr must be a finite"),
        (dict(warmup_epochs=-1.0), "warmup_epochs"), (dict(schedule="linear"), "schedule must be"), (dict(patience=True), "patience"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)
    sp = split()
    pairs = training_pairs(sp)
    with pytest.raises(TypeError, match="TrainingExamples"):
        fit(MatrixFactorization(MFConfig(sp.num_users, sp.num_items, d_model=4)), lambda g: pairs.batches(64, g),
            evaluation_batches(sp, "valid"), config=TrainConfig(epochs=1, progress=False), device="cpu")
