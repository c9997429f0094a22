"""Benchmark: train and evaluate the course's models on one dataset and print one table.

    python -m course_lib.bench ml100k                 # every model, notebook-sized settings
    python -m course_lib.bench ml100k --mode full     # converged settings (longer)
    python -m course_lib.bench ml100k --models pop mf --seeds 0 1 2

Every model is trained by the shared loop (early stopping on validation NDCG@10) and
scored by the one evaluation path: temporal leave-one-out, full ranking over all items,
the input history excluded, ties pessimistic. Test metrics are reported once, after the
model was chosen on validation. With several seeds the table gives mean ± standard
deviation.

Adding a model: write a function ``(data: BenchData, mode, seed, device) -> BenchRun`` and
append a :class:`BenchModel` to :data:`MODELS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .data.batch import Batch
from .data.split import SequenceSplit, evaluation_batches, temporal_leave_one_out, training_pairs
from .device import get_device
from .metrics import evaluate, hit_rate, ndcg, target_ranks
from .models.base import Recommender
from .models.mf import MatrixFactorization, MFConfig
from .models.popularity import Popularity
from .seeding import set_seed
from .training import TrainConfig, fit

Mode = Literal["notebook", "full"]


@dataclass(frozen=True)
class BenchData:
    name: str  # dataset name as given on the command line
    split: SequenceSplit  # temporal leave-one-out split
    valid: list[Batch]  # validation batches (input = training events)
    test: list[Batch]  # test batches (input = training events + validation item)


@dataclass(frozen=True)
class BenchRun:
    model: Recommender  # trained, holding its best-validation weights
    seconds: float  # wall-clock training time (validation passes included)
    epochs: int  # epochs trained (0 for models built by counting)


@dataclass(frozen=True)
class BenchModel:
    name: str  # shown in the table
    train: Callable[[BenchData, Mode, int, torch.device], BenchRun]  # (data, mode, seed, device) -> run


def load_dataset(name: str, *, max_len: int = 50) -> BenchData:
    """Load and split a benchmark dataset (``ml100k`` or ``shopworld``)."""
    if name == "ml100k":
        from .data.movielens import load_movielens_100k

        ml = load_movielens_100k()
        split = temporal_leave_one_out(ml.interactions, catalogue=ml.items.index)
    elif name == "shopworld":
        from .data.shopworld import generate_shopworld

        world = generate_shopworld()
        split = temporal_leave_one_out(world.interactions, catalogue=world.items.index)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose 'ml100k' or 'shopworld'.")
    valid = evaluation_batches(split, "valid", max_len=max_len)
    test = evaluation_batches(split, "test", max_len=max_len)
    return BenchData(name, split, valid, test)


def train_popularity(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    start = time.perf_counter()
    model = Popularity.from_split(data.split)
    return BenchRun(model, time.perf_counter() - start, 0)


def mf_settings(mode: Mode) -> tuple[int, TrainConfig]:
    """(embedding size, training config) of MF; chosen on validation NDCG@10 of ML-100K."""
    if mode == "full":
        return 64, TrainConfig(epochs=100, lr=1e-2, weight_decay=1e-5, batch_size=1024, patience=6)
    return 64, TrainConfig(epochs=30, lr=1e-2, weight_decay=1e-5, batch_size=1024, patience=3)


def train_mf(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    dim, config = mf_settings(mode)
    set_seed(seed)
    model = MatrixFactorization(MFConfig(data.split.num_users, data.split.num_items, dim=dim))
    pairs = training_pairs(data.split)
    config = dataclasses.replace(config, seed=seed, progress=sys.stderr.isatty())
    result = fit(model, lambda g: pairs.batches(config.batch_size, g), data.valid, config=config, device=device)
    return BenchRun(model, result.seconds, result.epochs_run)


MODELS: list[BenchModel] = [
    BenchModel("Pop", train_popularity),
    BenchModel("MF", train_mf),
]
"""The models the benchmark knows, in table order. Later notebooks' models are appended here."""


def _cell(values: Sequence[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def run_benchmark(
    dataset: str,
    *,
    models: Sequence[str] | None = None,
    mode: Mode = "notebook",
    seeds: Sequence[int] = (0,),
    device: torch.device | None = None,
) -> list[dict[str, str]]:
    """Train and test each model; return the table rows (also printed by :func:`main`)."""
    device = device or get_device()
    chosen = [m for m in MODELS if models is None or m.name.lower() in {x.lower() for x in models}]
    if models is not None and len(chosen) != len({x.lower() for x in models}):
        known = ", ".join(m.name for m in MODELS)
        raise ValueError(f"unknown model in {list(models)}; known models: {known}.")
    data = load_dataset(dataset)
    rows = []
    for entry in chosen:
        runs = []
        for seed in seeds:
            run = entry.train(data, mode, seed, device)
            metrics = evaluate(run.model, data.test, device=device).metrics((10,))
            runs.append((metrics, run))
        rows.append(
            {
                "model": entry.name,
                "HR@10": _cell([m["HR@10"] for m, _ in runs], 4),
                "NDCG@10": _cell([m["NDCG@10"] for m, _ in runs], 4),
                "MRR": _cell([m["MRR"] for m, _ in runs], 4),
                "seconds": _cell([r.seconds for _, r in runs], 1),
                "epochs": _cell([float(r.epochs) for _, r in runs], 0),
            }
        )
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """A Markdown table of the rows."""
    columns = ["model", "HR@10", "NDCG@10", "MRR", "seconds", "epochs"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=["ml100k", "shopworld"])
    parser.add_argument("--models", nargs="+", help=f"subset of: {', '.join(m.name for m in MODELS)}")
    parser.add_argument("--mode", choices=["notebook", "full"], default="notebook")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args(argv)
    device = get_device()
    rows = run_benchmark(args.dataset, models=args.models, mode=args.mode, seeds=args.seeds, device=device)
    print(
        f"{args.dataset}, mode {args.mode}, device {device}, seeds {args.seeds}: temporal leave-one-out, "
        "full ranking over all items, input history excluded, ties pessimistic; test users' metrics."
    )
    print(format_table(rows))
    if args.dataset == "ml100k" and (args.models is None or "pop" in {m.lower() for m in args.models}):
        data = load_dataset("ml100k")
        popularity = Popularity.from_split(data.split)
        ranks = torch.cat([
            target_ranks(popularity.score_all(b), b.targets, b.seen, ties="optimistic") for b in data.test
        ])
        print(
            f"Pop with ties broken in the target's favour: HR@10 {hit_rate(ranks, 10):.4f}, "
            f"NDCG@10 {ndcg(ranks, 10):.4f} (RecBole 1.2.1 reports HR@10 0.0859, NDCG@10 0.0450)."
        )


if __name__ == "__main__":
    main()
