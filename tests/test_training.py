"""The shared training loop: early stopping, best weights restored, repeatable, generator passed on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from course_lib.data import evaluation_batches, temporal_leave_one_out, training_pairs
from course_lib.metrics import evaluate
from course_lib.models import MatrixFactorization, MFConfig, Recommender
from course_lib.training import TrainConfig, fit


def split(seed=0, users=60, items=30):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        group = u % 3  # three taste groups, so MF can learn something
        pool = np.arange(1 + group * 10, 11 + group * 10)
        chosen = rng.choice(pool, size=8, replace=False)
        rows += [(u, int(i), 1, t) for t, i in enumerate(chosen)]
    return temporal_leave_one_out(pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"]))


def run(seed=0, epochs=8, patience=100, lr=0.05):
    torch.manual_seed(seed)
    sp = split()
    mf = MatrixFactorization(MFConfig(sp.num_users, sp.num_items, dim=8))
    pairs = training_pairs(sp)
    valid = evaluation_batches(sp, "valid")
    result = fit(
        mf, lambda g: pairs.batches(32, g), valid,
        config=TrainConfig(epochs=epochs, lr=lr, patience=patience, progress=False), device="cpu",
    )
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
    pairs = training_pairs(sp)
    fit(Recorder(sp.num_items), lambda g: pairs.batches(64, g), evaluation_batches(sp, "valid"),
        config=TrainConfig(epochs=2, progress=False), device="cpu")
    assert seen and all(isinstance(g, torch.Generator) for g in seen) and len({id(g) for g in seen}) == 1


def test_scheduler_is_stepped_per_batch_and_needs_its_optimizer():
    import pytest

    torch.manual_seed(0)
    sp = split()
    mf = MatrixFactorization(MFConfig(sp.num_users, sp.num_items, dim=4))
    pairs = training_pairs(sp)
    optimizer = torch.optim.Adam(mf.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    batches = lambda g: pairs.batches(64, g)
    steps_per_epoch = len(list(batches(torch.Generator())))
    fit(mf, batches, evaluation_batches(sp, "valid"), config=TrainConfig(epochs=2, patience=10, progress=False),
        device="cpu", optimizer=optimizer, scheduler=scheduler)
    assert scheduler.last_epoch == 2 * steps_per_epoch
    with pytest.raises(ValueError, match="optimizer"):
        fit(mf, batches, evaluation_batches(sp, "valid"), config=TrainConfig(epochs=1, progress=False),
            device="cpu", scheduler=scheduler)
