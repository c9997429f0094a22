"""The shared training loop every trainable recommender uses.

Adam on ``model.loss(batch, generator=...)``, one ``tqdm.auto`` bar over epochs, a
validation pass after every epoch (full-ranking NDCG@10 through
:func:`course_lib.metrics.evaluate`), early stopping when validation has not improved for
``patience`` epochs, and the best epoch's weights restored at the end. The loop owns the
optimizer and the learning-rate schedule (:class:`TrainConfig` says which):

    rate(step) = lr * warm-up(step) * decay(step)
    warm-up    = (step + 1) / W for the first W = round(warmup_epochs * steps per epoch) steps, else 1
    decay      = 1 ("constant") or (1 + cos(pi * progress)) / 2 ("cosine"), progress = 0 -> 1
                 from the end of the warm-up to the last step of ``epochs``

Randomness of the loop (shuffling, and whatever the model samples in ``loss``) comes from one
explicit CPU ``torch.Generator`` seeded from the config, so a run repeats exactly and draws
the same samples on CPU and GPU.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm.auto import tqdm

from .data.batch import Batch
from .data.split import TrainingExamples
from .metrics import evaluate
from .models.base import Recommender
from .run_cache import cacheable, enabled_by_environment, load_run, random_states, run_key, save_run

Schedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30  # at most this many passes over the training data
    lr: float = 1e-3  # Adam learning rate (the peak, with a schedule)
    weight_decay: float = 0.0  # Adam (L2) weight decay
    batch_size: int = 256  # training examples per step
    patience: int = 3  # stop after this many epochs without a better validation score
    warmup_epochs: float = 0.0  # linear learning-rate warm-up over this many epochs (0 = none)
    schedule: Schedule = "constant"  # after the warm-up: keep lr, or "cosine" decay to 0 at the last epoch
    monitor: str = "NDCG@10"  # the validation metric early stopping watches (higher = better)
    max_seconds: float | None = None  # stop after the epoch that crosses this wall-clock budget
    grad_clip: float | None = None  # clip the gradient norm to this value, if set
    seed: int = 0  # seeds the loop's generator (shuffling, sampling inside loss)
    progress: bool = True  # show the tqdm progress bar

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}.")
        if not self.lr > 0 or not math.isfinite(self.lr):  # `not > 0` also refuses NaN
            raise ValueError(f"TrainConfig.lr must be a finite number > 0, got {self.lr!r}.")
        if not self.weight_decay >= 0 or not math.isfinite(self.weight_decay):
            raise ValueError(f"TrainConfig.weight_decay must be a finite number >= 0, got {self.weight_decay!r}.")
        if self.grad_clip is not None and (not self.grad_clip > 0 or not math.isfinite(self.grad_clip)):
            raise ValueError(f"TrainConfig.grad_clip must be None (no clipping) or a finite number > 0, got {self.grad_clip!r}.")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"TrainConfig.max_seconds must be None (no budget) or a number > 0, got {self.max_seconds!r}.")
        if not self.warmup_epochs >= 0 or not math.isfinite(self.warmup_epochs):
            raise ValueError(f"TrainConfig.warmup_epochs must be >= 0, got {self.warmup_epochs!r}.")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"TrainConfig.schedule must be 'constant' or 'cosine', got {self.schedule!r}.")


@dataclass
class TrainResult:
    best_epoch: int  # epoch (1-based) whose weights were restored; 0 = the initial weights
    best_score: float  # validation `monitor` value at best_epoch
    epochs_run: int  # epochs actually trained
    seconds: float  # wall-clock time of the whole fit, validation passes included
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    valid_scores: list[float] = field(default_factory=list)  # validation `monitor` per epoch
    stopped_because: str = ""  # "patience", "epochs" or "time budget"
    from_cache: bool = False  # True: the run cache gave these weights and numbers (:mod:`course_lib.run_cache`)


def learning_rate_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: Schedule) -> float:
    """The factor the learning rate is multiplied by at optimizer step ``step`` (0-based); see the module docstring."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The learning-rate schedule of ``config`` (None for a constant rate without warm-up)."""
    if config.warmup_epochs == 0 and config.schedule == "constant":
        return None
    warmup = max(1, round(config.warmup_epochs * steps_per_epoch)) if config.warmup_epochs > 0 else 0
    total = steps_per_epoch * config.epochs

    def factor(step: int) -> float:
        return learning_rate_factor(step, warmup_steps=warmup, total_steps=total, schedule=config.schedule)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit(
    model: Recommender,
    examples: TrainingExamples,
    valid_batches: Sequence[Batch],
    *,
    config: TrainConfig,
    device: torch.device | str,
    cache: bool | None = None,
) -> TrainResult:
    """Train ``model`` with early stopping on validation; restore the best weights.

    Args:
        model: a :class:`~course_lib.models.Recommender` (moved to ``device`` here).
        examples: the training examples, e.g. ``training_windows(split, max_len=50)`` or
            ``training_pairs(split)``; shuffled into batches of ``config.batch_size`` every epoch.
        valid_batches: validation batches (with targets), e.g.
            ``evaluation_batches(split, "valid")``.
        config: a :class:`TrainConfig` (epochs, learning rate and schedule, batch size, ...).
        device: where to train; the model does not remember it.
        cache: True: look the run up in the run cache first and store it there after training
            (same code, initial weights, examples, validation batches, config and random state
            give the same run: :mod:`course_lib.run_cache`); False: always train; None (default):
            True when the environment variable ``COURSE_RUN_CACHE`` is ``1`` (the test command
            sets it), else False. Only models whose classes live in ``course_lib`` are cached.

    Returns:
        A :class:`TrainResult`; the model holds the best epoch's weights.
    """
    if not isinstance(examples, TrainingExamples):
        raise TypeError(
            f"fit trains on TrainingExamples (training_windows(...) or training_pairs(...)), got {type(examples).__name__}."
        )
    if len(examples) == 0:
        raise ValueError("fit got no training examples (len(examples) == 0): every user's training part is empty.")
    model.to(device)
    if not model.trainable:
        raise ValueError(f"{type(model).__name__} has no trainable parameters; nothing to fit.")
    if cache is None:
        cache = enabled_by_environment()
    key = run_key(model, examples, valid_batches, config, device) if cache and cacheable(model) else None
    if key is not None and (hit := load_run(model, key, device)) is not None:
        return TrainResult(**{**hit, "from_cache": True})
    result = _train(model, examples, valid_batches, config=config, device=device)
    if key is not None:
        try:
            save_run(model, key, dataclasses.asdict(result), random_states(device))
        except OSError as error:  # a full disk or a read-only data folder must not cost the trained model
            warnings.warn(f"could not keep this run in the run cache ({error}); the trained model is returned all the same.", stacklevel=2)
    return result


def _train(model: Recommender, examples: TrainingExamples, valid_batches: Sequence[Batch], *, config: TrainConfig, device) -> TrainResult:
    """The loop of :func:`fit` (arguments already checked, ``model`` already on ``device``)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = learning_rate_schedule(optimizer, config, steps_per_epoch=math.ceil(len(examples) / config.batch_size))
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()

    best_score = evaluate(model, valid_batches, device=device)[config.monitor]
    best_state = copy.deepcopy(model.state_dict())
    result = TrainResult(best_epoch=0, best_score=best_score, epochs_run=0, seconds=0.0, stopped_because="epochs")
    bar = tqdm(range(1, config.epochs + 1), desc=f"training {type(model).__name__}", disable=not config.progress)
    for epoch in bar:
        model.train()
        total, steps = 0.0, 0
        for batch in examples.batches(config.batch_size, generator):
            loss = model.loss(batch.to(device), generator=generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"epoch {epoch}, step {steps + 1}: the loss became {loss.item()} on a batch with targets; the "
                    "weights diverged (try a smaller learning rate or TrainConfig(grad_clip=1.0)) or the item "
                    "features hold NaN."
                )
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
