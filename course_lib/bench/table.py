"""``python -m course_lib.bench DATASET``: train and test the chosen models, print one table."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

import torch

from ..device import get_device
from ..metrics import evaluate, hit_rate, ndcg, target_ranks
from ..models.popularity import Popularity
from .data import DATASETS, load_dataset
from .registry import MODELS
from .settings import Mode

COLUMNS = ("model", "HR@10", "NDCG@10", "MRR", "seconds", "epochs")


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
    wanted = None if models is None else {x.lower() for x in models}
    chosen = [m for m in MODELS if wanted is None or m.name.lower() in wanted]
    if wanted is not None and len(chosen) != len(wanted):
        known = ", ".join(m.name for m in MODELS)
        raise ValueError(f"unknown model in {list(models)}; known models: {known}.")
    if wanted is not None and (unfit := [m.name for m in chosen if dataset not in m.datasets]):
        raise ValueError(f"{unfit} cannot train on {dataset!r} (they need a dataset among their own: "
                         f"{', '.join(f'{m.name}: {m.datasets}' for m in chosen if m.name in unfit)}).")
    chosen = [m for m in chosen if dataset in m.datasets]
    data = load_dataset(dataset)
    rows = []
    for entry in chosen:
        runs = []
        for seed in seeds:
            run = entry.train(data, mode, seed, device)
            runs.append((evaluate(run.model, run.test, device=device).metrics((10,)), run))
        rows.append({
            "model": entry.name,
            "HR@10": _cell([m["HR@10"] for m, _ in runs], 4),
            "NDCG@10": _cell([m["NDCG@10"] for m, _ in runs], 4),
            "MRR": _cell([m["MRR"] for m, _ in runs], 4),
            "seconds": _cell([r.seconds for _, r in runs], 1),
            "epochs": _cell([float(r.epochs) for _, r in runs], 0),
        })
    return rows


def format_table(rows: list[dict[str, str]]) -> str:
    """A Markdown table of the rows."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + "|"]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description="Train and test the course's models; print one table.")
    parser.add_argument("dataset", choices=DATASETS)
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
