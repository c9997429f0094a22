"""Train one benchmark entry: seed, build the model from its settings, fit it with the shared loop.

Every model of the benchmark trains through :func:`train_model`, so what the shared loop receives
(the training examples, the validation batches) is decided in one place; the leakage test
checks exactly that.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..data.batch import Batch
from ..data.split import TrainingExamples, training_pairs, training_windows
from ..models.base import Recommender
from ..models.ensemble import ScoreEnsemble
from ..seeding import set_seed
from ..training import fit
from .data import DATASETS, BenchData
from .settings import Mode, Settings

Build = Callable[[BenchData, Settings], Recommender]  # (data, settings) -> a fresh, untrained model


@dataclass(frozen=True)
class BenchRun:
    model: Recommender  # trained, holding its best-validation weights
    seconds: float  # wall-clock training time (validation passes included); building time for counted models
    epochs: int  # epochs trained (0 for models built by counting)
    test: list[Batch]  # the test batches this model reads (histories of its own length L)
    cached: bool = False  # True: the weights were loaded from the run cache (:mod:`course_lib.run_cache`), not trained now


@dataclass(frozen=True)
class BenchModel:
    """One row of the benchmark table."""

    name: str  # shown in the table
    settings: Callable[[BenchData, Mode], Settings]  # (data, mode) -> the settings of that mode
    build: Build  # (data, settings) -> a fresh model
    datasets: tuple[str, ...] = DATASETS  # the datasets it can train on

    def train(self, data: BenchData, mode: Mode, seed: int, device: torch.device, *, cache: bool | None = None) -> BenchRun:
        """Build and train this entry's model on ``data`` with the settings of ``mode`` (``cache``: see :func:`train_model`)."""
        return train(self.build, data, self.settings(data, mode), seed=seed, device=device, cache=cache)


def training_examples(data: BenchData, settings: Settings) -> TrainingExamples:
    """What the shared loop trains on: windows over each user's training events, or (user, item) pairs."""
    if settings.windows is None:
        return training_pairs(data.split)
    return training_windows(data.split, max_len=settings.windows.max_len, stride=settings.windows.stride)


def history_length(data: BenchData, settings: Settings) -> int:
    """L of the evaluation batches: the windows' length, or the dataset's for models without windows."""
    return data.valid[0].history.shape[1] if settings.windows is None else settings.windows.max_len


def train_model(
    model: Recommender, data: BenchData, settings: Settings, *, seed: int, device: torch.device | str, cache: bool | None = None
) -> BenchRun:
    """Train an already built ``model`` as ``settings`` say, early-stopping on ``data``'s validation users.

    Args:
        model: a fresh recommender (see :func:`train` to build one from the settings).
        data: the benchmark data.
        settings: ``settings.train`` (None: nothing to train) and ``settings.windows``.
        seed: seeds the loop (shuffling, sampling inside the loss).
        device: where to train.
        cache: look the run up in the run cache first (same code, initial weights, data, config, seed and
            random state: :mod:`course_lib.run_cache`) and store it there after training; None: as
            :func:`course_lib.training.fit` decides (the ``COURSE_RUN_CACHE`` environment variable).

    Returns:
        A :class:`BenchRun`; the model holds its best-validation weights.
    """
    length = history_length(data, settings)
    test = data.batches("test", length)
    if settings.train is None:
        return BenchRun(model, 0.0, 0, test)
    config = dataclasses.replace(settings.train, seed=seed, progress=sys.stderr.isatty())
    examples, valid = training_examples(data, settings), data.batches("valid", length)
    result = fit(model, examples, valid, config=config, device=device, cache=cache)
    return BenchRun(model, result.seconds, result.epochs_run, test, cached=result.from_cache)


def train(
    build: Build, data: BenchData, settings: Settings, *, seed: int, device: torch.device | str, cache: bool | None = None
) -> BenchRun:
    """Seed, build the model from ``settings`` and train it: one repeatable run.

    Args:
        build: ``(data, settings) -> model``, e.g. :func:`course_lib.bench.recipes.sasrec.build_sasrec`.
        data: the benchmark data.
        settings: what to build and how to train it.
        seed: seeds the weights and the loop.
        device: where to train.
        cache: use the run cache (see :func:`train_model`).
    """
    set_seed(seed)
    start = time.perf_counter()
    model = build(data, settings)
    built = time.perf_counter() - start
    run = train_model(model, data, settings, seed=seed, device=device, cache=cache)
    return run if settings.train is not None else dataclasses.replace(run, seconds=built)


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member`` in benchmark run ``seed`` (distinct for every pair)."""
    return 1000 * seed + member


def train_ensemble(entry: BenchModel, size: int, data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """Train ``size`` members of ``entry`` (seeds :func:`member_seed`) and wrap them in a :class:`ScoreEnsemble`.

    Returns:
        A :class:`BenchRun`: the ensemble, the members' total seconds, and the most epochs any member trained.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an int >= 1 (members to train), got {size!r}.")
    runs = [entry.train(data, mode, member_seed(seed, m), device) for m in range(size)]
    return BenchRun(
        ScoreEnsemble([run.model for run in runs]), sum(run.seconds for run in runs), max(run.epochs for run in runs),
        runs[0].test,
    )
