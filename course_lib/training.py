"""The shared training loop every trainable recommender uses.

Adam on ``model.loss(batch, generator=...)``, one ``tqdm.auto`` bar over epochs, a
validation pass after every epoch (full-ranking NDCG@10 through
:func:`course_lib.metrics.evaluate`), early stopping when validation has not improved for
``patience`` epochs, and the best epoch's weights restored at the end. Randomness of the
loop (shuffling, and whatever the model samples in ``loss``) comes from one explicit CPU
``torch.Generator`` seeded from the config, so a run repeats exactly and draws the same
samples on CPU and GPU.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .data.batch import Batch
from .metrics import evaluate
from .models.base import Recommender


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # at most this many passes over the training data
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam (L2) weight decay
    batch_size: int = 256  # training examples per step
    patience: int = 3  # stop after this many epochs without a better validation score
    monitor: str = "NDCG@10"  # the validation metric early stopping watches (higher = better)
    max_seconds: float | None = None  # stop after the epoch that crosses this wall-clock budget
    grad_clip: float | None = None  # clip the gradient norm to this value, if set
    seed: int = 0  # seeds the loop's generator (shuffling, sampling inside loss)
    progress: bool = True  # show the tqdm progress bar


@dataclass
class TrainResult:
    best_epoch: int  # epoch (1-based) whose weights were restored; 0 = the initial weights
    best_score: float  # validation `monitor` value at best_epoch
    epochs_run: int  # epochs actually trained
    seconds: float  # wall-clock time of the whole fit, validation passes included
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    valid_scores: list[float] = field(default_factory=list)  # validation `monitor` per epoch
    stopped_because: str = ""  # "patience", "epochs" or "time budget"


def fit(
    model: Recommender,
    train_batches: Callable[[torch.Generator], Iterable[Batch]],
    valid_batches: Sequence[Batch],
    *,
    config: TrainConfig,
    device: torch.device | str,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> TrainResult:
    """Train ``model`` with early stopping on validation; restore the best weights.

    Args:
        model: a :class:`~course_lib.models.Recommender` (moved to ``device`` here).
        train_batches: called once per epoch with the loop's CPU generator; returns that
            epoch's batches, e.g. ``lambda g: examples.batches(256, g)``.
        valid_batches: validation batches (with targets), e.g.
            ``evaluation_batches(split, "valid")``.
        config: a :class:`TrainConfig`.
        device: where to train; the model does not remember it.
        optimizer: default Adam(lr, weight_decay) over the model's parameters.
        scheduler: an optional learning-rate schedule on that optimizer, stepped after every
            optimizer step (warm-up, cosine decay, ...).

    Returns:
        A :class:`TrainResult`; the model holds the best epoch's weights.
    """
    model.to(device)
    if not model.trainable:
        raise ValueError(f"{type(model).__name__} has no trainable parameters; nothing to fit.")
    if scheduler is not None and optimizer is None:
        raise ValueError("pass the optimizer your scheduler was built on (optimizer=...), not only the scheduler.")
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()

    best_score = evaluate(model, valid_batches, device=device)[config.monitor]
    best_state = copy.deepcopy(model.state_dict())
    result = TrainResult(best_epoch=0, best_score=best_score, epochs_run=0, seconds=0.0, stopped_because="epochs")
    bar = tqdm(range(1, config.epochs + 1), desc=f"training {type(model).__name__}", disable=not config.progress)
    for epoch in bar:
        model.train()
        total, steps = 0.0, 0
        for batch in train_batches(generator):
            loss = model.loss(batch.to(device), generator=generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch}: the loss became {loss.item()}; try a smaller learning rate.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += loss.item()
            steps += 1
        score = evaluate(model, valid_batches, device=device)[config.monitor]
        result.losses.append(total / max(steps, 1))
        result.valid_scores.append(score)
        result.epochs_run = epoch
        if score > best_score:
            best_score, result.best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{result.losses[-1]:.4f}", **{f"valid {config.monitor}": f"{score:.4f}"}, best=result.best_epoch)
        if epoch - result.best_epoch >= config.patience:
            result.stopped_because = "patience"
            break
        if config.max_seconds is not None and time.perf_counter() - start >= config.max_seconds:
            result.stopped_because = "time budget"
            break
    bar.close()
    model.load_state_dict(best_state)
    result.best_score = best_score
    result.seconds = time.perf_counter() - start
    return result
