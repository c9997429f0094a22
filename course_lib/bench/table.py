"""``python -m course_lib.bench DATASET``: train and test the chosen models, print one table."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

import torch

from ..device import get_device
from ..metrics import evaluate, hit_rate, ndcg, target_ranks
from ..models.popularity import Popularity
from ..stats import paired_difference
from .data import DATASETS, load_dataset
from .registry import MODELS
from .settings import Mode

REFERENCE = "SASRec"  # every model's NDCG@10 is compared, user by user, with this one's (by default)
COLUMNS = ("model", "HR@10", "NDCG@10", "MRR", "coverage@10", "long-tail HR@10", "seconds", "epochs")


def difference_column(reference: str) -> str:
    """The name of the column that holds each model's paired NDCG@10 difference to ``reference``."""
    return f"ΔNDCG@10 vs {reference} [95%]"


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
    reference: str | Sequence[str] = REFERENCE,
) -> list[dict[str, str]]:
    """Train and test each model; return the table rows (also printed by :func:`main`).

    With several seeds a cell shows mean ± sd over the seeds. Each reference (one name or several)
    gets a difference column (:func:`difference_column`): the mean per-user NDCG@10 difference to
    that model (each user's NDCG@10 averaged over the seeds first) with its 95% bootstrap interval
    over the test users (:mod:`course_lib.stats`); "—" when the reference is not among the models run.
    """
    references = [reference] if isinstance(reference, str) else list(reference)
    known = {m.name.lower(): m.name for m in MODELS}
    if unknown := [name for name in references if name.lower() not in known]:
        raise ValueError(f"unknown reference {unknown}; a reference is one of the models: {', '.join(known.values())}.")
    references = [known[name.lower()] for name in references]  # spelled as in the table
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
    item_counts = torch.from_numpy(data.split.train_item_counts())  # (I + 1,) for the beyond-accuracy columns
    rows, per_user = [], {}
    for entry in chosen:
        evaluations, runs = [], []
        for seed in seeds:
            run = entry.train(data, mode, seed, device)
            evaluations.append(evaluate(run.model, run.test, device=device))
            runs.append(run)
        metrics = [e.metrics((10,)) | e.beyond_accuracy(item_counts, 10) for e in evaluations]
        per_user[entry.name] = (evaluations[0].users, torch.stack([e.per_user("NDCG@10") for e in evaluations]).mean(0))
        rows.append({
            "model": entry.name,
            **{name: _cell([m[name] for m in metrics], 4) for name in ("HR@10", "NDCG@10", "MRR", "coverage@10")},
            "long-tail HR@10": _cell([m["long-tail HR@10"] for m in metrics], 4),
            "seconds": _cell([r.seconds for r in runs], 1),
            "epochs": _cell([float(r.epochs) for r in runs], 0),
        })
    for row in rows:
        for name in references:
            row[difference_column(name)] = _difference(per_user, row["model"], name)
    return rows


def _difference(per_user: dict[str, tuple[torch.Tensor, torch.Tensor]], name: str, reference: str) -> str:
    """The paired NDCG@10 difference of ``name`` to ``reference`` with its interval, as a table cell."""
    if reference not in per_user:
        return "—"
    if name == reference:
        return "(reference)"
    (users, values), (reference_users, reference_values) = per_user[name], per_user[reference]
    if not torch.equal(users, reference_users):
        raise ValueError(f"{name} and {reference} were tested on different users; the paired difference needs the same.")
    result = paired_difference(values, reference_values)
    return f"{result.mean:+.4f} [{result.low:+.4f}, {result.high:+.4f}]"


def format_table(rows: list[dict[str, str]]) -> str:
    """A Markdown table of the rows; the difference columns, one per reference, follow NDCG@10."""
    differences = [c for c in rows[0] if c not in COLUMNS] if rows else []
    columns = [*COLUMNS[:3], *differences, *COLUMNS[3:]]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|"]
    lines += ["| " + " | ".join(row[c] for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench", description="Train and test the course's models; print one table.")
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--models", nargs="+", help=f"subset of: {', '.join(m.name for m in MODELS)}")
    parser.add_argument("--mode", choices=["notebook", "full"], default="notebook")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--reference", nargs="+", default=[REFERENCE],
                        help=f"the model(s) every other is compared with, one column each (default {REFERENCE})")
    args = parser.parse_args(argv)
    device = get_device()
    try:
        rows = run_benchmark(args.dataset, models=args.models, mode=args.mode, seeds=args.seeds, device=device,
                             reference=args.reference)
    except ValueError as error:  # an unknown model or reference: usage and the message, not a traceback
        parser.error(str(error))
    print(
        f"{args.dataset}, mode {args.mode}, device {device}, seeds {args.seeds}: temporal leave-one-out, "
        "full ranking over all items, input history excluded, ties pessimistic; test users' metrics. "
        f"ΔNDCG@10 vs NAME [95%]: mean per-user difference to NAME ({', '.join(args.reference)}) with its 95% "
        "bootstrap interval over the test users (— if NAME did not run); long tail = targets outside the 20% "
        "most-interacted items."
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
