"""Compare capstone variants on ML-100K by *validation* NDCG@10, over seeds and as seed ensembles.

    python -m course_lib.models.capstone.sweep base layers=2,heads=4 --epochs 30 --seeds 0 1 2
    python -m course_lib.models.capstone.sweep layers=2,heads=4 --epochs 30 --seeds 0 1 2 --test

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

import torch

from ...metrics import evaluate
from ..ensemble import ScoreEnsemble
from .bench import CapstoneSettings, capstone_settings, train_capstone

_SHAPE_KEYS = {"layers": ("n_layers", int), "heads": ("n_heads", int), "D": ("d_model", int), "L": ("max_len", int),
               "K": ("num_interests", int), "dropout": ("dropout", float)}
_CONFIG_KEYS = {"lr": ("lr", float), "wd": ("weight_decay", float), "bs": ("batch_size", int)}


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str  # as given on the command line
    settings: CapstoneSettings
    fusion: str = "gated"  # the MovieLens item encoder's fusion


def parse_variant(text: str, epochs: int | None = None) -> Variant:
    """``"base"`` or ``"key=value,..."`` -> a :class:`Variant` of the ML-100K full-mode settings."""
    settings = capstone_settings("ml100k", "full")
    shape, config, stride, fusion = settings.shape, settings.config, None, "gated"
    for part in [] if text == "base" else text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"variant parts look like key=value, got {part!r} in {text!r}.")
        if key in _SHAPE_KEYS:
            field, kind = _SHAPE_KEYS[key]
            shape = dataclasses.replace(shape, **{field: kind(value)})
        elif key in _CONFIG_KEYS:
            field, kind = _CONFIG_KEYS[key]
            config = dataclasses.replace(config, **{field: kind(value)})
        elif key == "stride":
            stride = int(value)
        elif key == "fusion":
            fusion = value
        else:
            known = ", ".join([*_SHAPE_KEYS, *_CONFIG_KEYS, "stride", "fusion"])
            raise ValueError(f"unknown variant key {key!r} in {text!r}; known keys: {known}.")
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs, patience=epochs)
    return Variant(text, dataclasses.replace(settings, shape=shape, config=config, stride=stride), fusion)


def main(argv: Sequence[str] | None = None) -> None:
    from ...bench import evaluation_batches, load_dataset
    from ...device import get_device

    parser = argparse.ArgumentParser(prog="python -m course_lib.models.capstone.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="'base' or key=value,... (see the module docstring)")
    parser.add_argument("--epochs", type=int, default=None, help="replace the full mode's number of epochs")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--test", action="store_true", help="also print test NDCG@10 (for the variant chosen)")
    args = parser.parse_args(argv)
    variants = [parse_variant(v, args.epochs) for v in args.variants]  # parse all before training any
    device = get_device()
    data = load_dataset("ml100k")
    stages = ["valid", "test"] if args.test else ["valid"]
    print(f"ML-100K capstone variants, device {device}, seeds {args.seeds}: NDCG@10 (full ranking, seen items excluded)")
    print("| variant | stage | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± sd | ensemble | seconds |")
    print("|---|---|" + "---:|" * (len(args.seeds) + 3))
    for variant in variants:
        runs = [train_capstone(data, "full", seed, device, settings=variant.settings, fusion=variant.fusion) for seed in args.seeds]
        seconds = sum(run.seconds for run in runs)
        for stage in stages:
            batches = evaluation_batches(data.split, stage, max_len=variant.settings.shape.max_len)
            singles = [evaluate(run.model, batches, device=device)["NDCG@10"] for run in runs]
            together = evaluate(ScoreEnsemble([run.model for run in runs]), batches, device=device)["NDCG@10"]
            spread = f"{statistics.mean(singles):.4f} ± {statistics.stdev(singles):.4f}" if len(singles) > 1 else f"{singles[0]:.4f}"
            cells = " | ".join(f"{s:.4f}" for s in singles)
            print(f"| {variant.name} | {stage} | {cells} | {spread} | {together:.4f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
