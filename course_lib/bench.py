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
import functools
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from .data.batch import Batch
from .data.split import (
    SequenceSplit,
    TrainingExamples,
    evaluation_batches,
    temporal_leave_one_out,
    training_pairs,
    training_windows,
)
from .device import get_device
from .metrics import evaluate, hit_rate, ndcg, target_ranks
from .models.base import Recommender
from .models.bert4rec import BERT4Rec, BERT4RecConfig
from .models.din import DIN, DINConfig
from .models.gru import GRURec, GRURecConfig
from .models.mf import MatrixFactorization, MFConfig
from .models.popularity import Popularity
from .models.sasrec import SASRec, SASRecConfig
from .models.capstone import train_capstone
from .models.multimodal.bench import train_multimodal
from .models.multimodal.item_encoder import MODALITIES
from .models.text_sasrec import train_id_text_sasrec, train_text_only_sasrec
from .models.time_aware_sasrec import train_time_aware_sasrec
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
    test: list[Batch] | None = None  # test batches this model reads, if not the dataset's (e.g. a longer L)


@dataclass(frozen=True)
class BenchModel:
    name: str  # shown in the table
    train: Callable[[BenchData, Mode, int, torch.device], BenchRun]  # (data, mode, seed, device) -> run
    datasets: tuple[str, ...] = ("ml100k", "shopworld")  # the datasets it can train on


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


@dataclass(frozen=True)
class SequenceSettings:
    """How a sequential model (SASRec, GRU) is built and trained in one benchmark mode."""

    max_len: int  # L, history positions the model reads (training windows and evaluation)
    stride: int  # step between the ends of overlapping training windows (L = no overlap, 1 = every prefix)
    d_model: int  # D
    n_layers: int  # Transformer blocks (SASRec) or GRU layers
    n_heads: int  # attention heads (SASRec only)
    dropout: float  # dropout everywhere in the model
    warmup_epochs: float  # linear learning-rate warm-up, then cosine decay to 0 at `config.epochs` (0 = constant rate)
    config: TrainConfig  # the shared loop's settings


def sasrec_settings(mode: Mode) -> SequenceSettings:
    """SASRec's settings, chosen on validation NDCG@10 of ML-100K.

    ``"notebook"`` is exactly what notebook 08 trains (its knobs at the top); ``"full"`` is the
    converged configuration: a cosine learning-rate schedule over a fixed number of epochs.
    """
    if mode == "full":
        return SequenceSettings(
            max_len=50, stride=50, d_model=64, n_layers=1, n_heads=2, dropout=0.2, warmup_epochs=1,
            config=TrainConfig(epochs=30, lr=3e-3, batch_size=64, patience=100),
        )
    # 12 epochs: what 40 s bought on an idle 2-core CPU; a fixed count, not a time budget, so the
    # result does not depend on how busy the machine is
    return SequenceSettings(
        max_len=50, stride=50, d_model=64, n_layers=1, n_heads=2, dropout=0.2, warmup_epochs=0,
        config=TrainConfig(epochs=12, lr=3e-3, batch_size=64, patience=3),
    )


def gru_settings(mode: Mode) -> SequenceSettings:
    """The GRU baseline's settings: the same windows, loss and schedule as SASRec's.

    ``"notebook"`` is what notebook 08 trains (5 epochs, to keep the notebook fast).
    """
    if mode == "full":
        return SequenceSettings(
            max_len=50, stride=50, d_model=64, n_layers=1, n_heads=1, dropout=0.2, warmup_epochs=1,
            config=TrainConfig(epochs=30, lr=3e-3, batch_size=64, patience=100, max_seconds=540),
        )
    return SequenceSettings(
        max_len=50, stride=50, d_model=64, n_layers=1, n_heads=1, dropout=0.2, warmup_epochs=0,
        config=TrainConfig(epochs=5, lr=3e-3, batch_size=64, patience=3),
    )


def sequence_training_data(split: SequenceSplit, settings: SequenceSettings) -> TrainingExamples:
    """The training windows of a sequential model (training events only; see :func:`training_windows`)."""
    return training_windows(split, max_len=settings.max_len, stride=settings.stride)


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate x (linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps``)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fit_on_windows(
    model: Recommender,
    data: BenchData,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    *,
    max_len: int,
    stride: int | None = None,
    warmup_epochs: float = 0.0,
) -> BenchRun:
    """Train a sequence model on training windows with the shared loop (optional warm-up + cosine).

    Every sequence model of the benchmark (SASRec, GRU, DIN, BERT4Rec) trains through here.
    A model that reads a different L than the benchmark's batches is validated and tested
    on batches of its own length.
    """
    valid, test = data.valid, None
    if max_len != data.valid[0].history.shape[1]:
        valid = evaluation_batches(data.split, "valid", max_len=max_len)
        test = evaluation_batches(data.split, "test", max_len=max_len)
    windows = training_windows(data.split, max_len=max_len, stride=stride)
    config = dataclasses.replace(config, seed=seed, progress=sys.stderr.isatty())
    optimizer = scheduler = None
    if warmup_epochs > 0:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = math.ceil(len(windows) / config.batch_size)
        scheduler = warmup_cosine(
            optimizer, warmup_steps=max(1, round(warmup_epochs * steps)), total_steps=steps * config.epochs
        )
    result = fit(
        model, lambda g: windows.batches(config.batch_size, g), valid,
        config=config, device=device, optimizer=optimizer, scheduler=scheduler,
    )
    return BenchRun(model, result.seconds, result.epochs_run, test)


def fit_sequence_model(
    model: Recommender, data: BenchData, settings: SequenceSettings, seed: int, device: torch.device
) -> BenchRun:
    """:func:`fit_on_windows` with the windows and schedule of ``settings`` (SASRec, GRU)."""
    return fit_on_windows(
        model, data, settings.config, seed, device,
        max_len=settings.max_len, stride=settings.stride, warmup_epochs=settings.warmup_epochs,
    )


def train_sasrec_variant(
    model_type: type[SASRec], config_type: type[SASRecConfig], data: BenchData, mode: Mode, seed: int,
    device: torch.device,
) -> BenchRun:
    """Build ``model_type(config_type(...))`` (SASRec or a subclass) with SASRec's settings and train it."""
    s = sasrec_settings(mode)
    set_seed(seed)
    model = model_type(
        config_type(
            data.split.num_items, max_len=s.max_len, d_model=s.d_model, n_heads=s.n_heads, n_layers=s.n_layers,
            dropout=s.dropout,
        )
    )
    return fit_sequence_model(model, data, s, seed, device)


def train_sasrec(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    return train_sasrec_variant(SASRec, SASRecConfig, data, mode, seed, device)


def train_gru(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    s = gru_settings(mode)
    set_seed(seed)
    model = GRURec(GRURecConfig(data.split.num_items, d_model=s.d_model, n_layers=s.n_layers, dropout=s.dropout))
    return fit_sequence_model(model, data, s, seed, device)


def din_settings(mode: Mode) -> TrainConfig:
    """Training config of every DIN variant; chosen on validation NDCG@10 of ML-100K."""
    if mode == "full":
        return TrainConfig(epochs=60, lr=5e-3, batch_size=64, patience=8)
    return TrainConfig(epochs=6, lr=1e-2, batch_size=64, patience=4)


def _train_din(data: BenchData, mode: Mode, seed: int, device: torch.device, **options) -> BenchRun:
    set_seed(seed)
    model = DIN(DINConfig(data.split.num_items, d_model=64, num_negatives=64, max_len=50, **options))
    return fit_on_windows(model, data, din_settings(mode), seed, device, max_len=50)


def train_din_mean(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """DIN's mean-pooling twin: one fixed user vector (the mean of the history) for every candidate."""
    return _train_din(data, mode, seed, device, pooling="mean")


def train_din(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """DIN: target attention (the candidate is the query over the history), no order information."""
    return _train_din(data, mode, seed, device, pooling="attention")


def train_din_recency(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """DIN with a learned recency vector on every key (not in the paper)."""
    return _train_din(data, mode, seed, device, pooling="attention", recency=True)


def bert4rec_settings(mode: Mode) -> tuple[dict, TrainConfig]:
    """(model options, training config) of BERT4Rec; chosen on validation NDCG@10 of ML-100K."""
    if mode == "full":
        model = dict(max_len=50, d_model=64, n_heads=2, n_layers=2, dropout=0.2, mask_prob=0.2)
        return model, TrainConfig(epochs=200, lr=3e-3, batch_size=64, patience=10, max_seconds=540)
    model = dict(max_len=50, d_model=64, n_heads=2, n_layers=2, dropout=0.2, mask_prob=0.4)
    return model, TrainConfig(epochs=10, lr=5e-3, batch_size=64, patience=3)


def train_bert4rec(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """BERT4Rec: bidirectional blocks, cloze training with MASK_ID = I + 1."""
    options, config = bert4rec_settings(mode)
    set_seed(seed)
    model = BERT4Rec(BERT4RecConfig(data.split.num_items, **options))
    return fit_on_windows(model, data, config, seed, device, max_len=options["max_len"])


MODELS: list[BenchModel] = [
    BenchModel("Pop", train_popularity),
    BenchModel("MF", train_mf),
    BenchModel("DIN-mean", train_din_mean),
    BenchModel("DIN", train_din),
    BenchModel("DIN+recency", train_din_recency),
    BenchModel("GRU", train_gru),
    BenchModel("SASRec", train_sasrec),
    BenchModel("BERT4Rec", train_bert4rec),
    BenchModel("TimeAwareSASRec", train_time_aware_sasrec),
    BenchModel("SASRec-text", train_text_only_sasrec, datasets=("ml100k",)),  # all-MiniLM-L6-v2 title embeddings
    BenchModel("SASRec-id+text", train_id_text_sasrec, datasets=("ml100k",)),
    BenchModel("Multimodal", train_multimodal, datasets=("shopworld",)),  # ID + image + text + price, gated fusion
    BenchModel("Capstone", train_capstone),  # multimodal items -> time-aware self-attention -> candidate over interests
    *(  # the capstone with one ShopWorld modality: what fusing all four adds (notebook 13's ablation, over seeds)
        BenchModel(f"Capstone-{m}-only", functools.partial(train_capstone, modalities=(m,)), datasets=("shopworld",))
        for m in MODALITIES
    ),
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
    if models is not None and (unfit := [m.name for m in chosen if dataset not in m.datasets]):
        raise ValueError(f"{unfit} cannot train on {dataset!r} (they need a dataset among their own: "
                         f"{', '.join(f'{m.name}: {m.datasets}' for m in chosen if m.name in unfit)}).")
    chosen = [m for m in chosen if dataset in m.datasets]
    data = load_dataset(dataset)
    rows = []
    for entry in chosen:
        runs = []
        for seed in seeds:
            run = entry.train(data, mode, seed, device)
            test = data.test if run.test is None else run.test
            metrics = evaluate(run.model, test, device=device).metrics((10,))
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
