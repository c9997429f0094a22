"""Compare capstone variants on ML-100K by *validation* NDCG@10, over seeds and as seed ensembles.

    python -m course_lib.bench.sweep base layers=2,heads=4 --epochs 30 --seeds 0 1 2
    python -m course_lib.bench.sweep layers=2,heads=4 --epochs 30 --seeds 0 1 2 --test

A variant is ``base`` (the full-mode settings of :func:`capstone_settings`) or comma-separated
changes to them: ``layers``, ``heads``, ``D``, ``L``, ``K``, ``dropout``, ``lr``, ``wd``, ``bs``,
``stride``, ``fusion`` (``gated``/``sum``). ``--epochs`` replaces the number of epochs. Every
variant is printed with each seed's validation NDCG@10, their mean ± standard deviation, and the
NDCG@10 of the seeds' :class:`~course_lib.models.ensemble.ScoreEnsemble`. Choose on that table;
``--test`` also prints the test row, and is meant for the one variant chosen (test numbers read
for many variants would turn the test set into a second validation set).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Sequence

from ..device import get_device
from ..metrics import evaluate
from ..models.ensemble import ScoreEnsemble
from .data import BenchData, load_dataset
from .recipes.capstone import build_capstone, capstone_settings
from .run import train
from .settings import Settings

# key -> (which part of the settings, field, type)
_KEYS = {
    "layers": ("model", "n_layers", int), "heads": ("model", "n_heads", int), "K": ("model", "num_interests", int),
    "dropout": ("model", "dropout", float), "lr": ("train", "lr", float), "wd": ("train", "weight_decay", float),
    "bs": ("train", "batch_size", int), "stride": ("windows", "stride", int), "fusion": ("items", "fusion", str),
}


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str  # as given on the command line
    settings: Settings


def _replace(settings: Settings, part: str, **changes) -> Settings:
    return dataclasses.replace(settings, **{part: dataclasses.replace(getattr(settings, part), **changes)})


def parse_variant(text: str, data: BenchData, epochs: int | None = None) -> Variant:
    """``"base"`` or ``"key=value,..."`` -> a :class:`Variant` of the ML-100K full-mode settings."""
    settings = capstone_settings(data, "full")
    for part in [] if text == "base" else text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"variant parts look like key=value, got {part!r} in {text!r}.")
        if key == "D":  # the model and its item encoder share D: change both at once
            settings = dataclasses.replace(
                settings, model=dataclasses.replace(settings.model, d_model=int(value)),
                items=dataclasses.replace(settings.items, d_model=int(value)),
            )
        elif key == "L":  # the model's positions and the windows share L: change both at once
            settings = dataclasses.replace(
                settings, model=dataclasses.replace(settings.model, max_len=int(value)),
                windows=dataclasses.replace(settings.windows, max_len=int(value)),
            )
        elif key in _KEYS:
            where, field, kind = _KEYS[key]
            settings = _replace(settings, where, **{field: kind(value)})
        else:
            known = ", ".join([*_KEYS, "D", "L"])
            raise ValueError(f"unknown variant key {key!r} in {text!r}; known keys: {known}.")
    if epochs is not None:
        settings = _replace(settings, "train", epochs=epochs, patience=epochs)
    return Variant(text, settings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course_lib.bench.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="'base' or key=value,... (see the module docstring)")
    parser.add_argument("--epochs", type=int, default=None, help="replace the full mode's number of epochs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--test", action="store_true", help="also print test NDCG@10 (for the variant chosen)")
    args = parser.parse_args(argv)
    data = load_dataset("ml100k")
    variants = [parse_variant(v, data, args.epochs) for v in args.variants]  # parse all before training any
    device = get_device()
    stages = ["valid", "test"] if args.test else ["valid"]
    print(f"ML-100K capstone variants, device {device}, seeds {args.seeds}: NDCG@10 (full ranking, seen items excluded)")
    print("| variant | stage | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± sd | ensemble | seconds |")
    print("|---|---|" + "---:|" * (len(args.seeds) + 3))
    for variant in variants:
        runs = [train(build_capstone, data, variant.settings, seed=seed, device=device) for seed in args.seeds]
        seconds = sum(run.seconds for run in runs)
        for stage in stages:
            batches = data.batches(stage, variant.settings.windows.max_len)
            singles = [evaluate(run.model, batches, device=device)["NDCG@10"] for run in runs]
            together = evaluate(ScoreEnsemble([run.model for run in runs]), batches, device=device)["NDCG@10"]
            spread = f"{statistics.mean(singles):.4f} ± {statistics.stdev(singles):.4f}" if len(singles) > 1 else f"{singles[0]:.4f}"
            cells = " | ".join(f"{s:.4f}" for s in singles)
            print(f"| {variant.name} | {stage} | {cells} | {spread} | {together:.4f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
