"""Data-parallel training with ``torchrun``: each process trains a replica on its share of every batch.

    python -m torch.distributed.run --nproc_per_node=2 -m course_lib.bench.distributed ml100k --model SASRec

``torchrun`` starts N processes (ranks) and tells each its rank and the world size through
environment variables. Every rank builds the same model from the same seed, so the replicas start
equal. Each step takes one *global* batch of B training examples, the same B that single-process
training would take in the same order; rank r trains on examples r, r + N, r + 2N, ... of it.
``DistributedDataParallel`` averages the gradients over the ranks during ``backward`` (gloo on a
CPU, nccl on GPUs), so every replica takes the same optimiser step and they stay equal.

For that step to be *the* single-process step, the average must weigh every target the same:
the course's losses are means over a batch's targets, and the ranks' shares of a global batch can
hold different numbers of targets (windows have padding). Each rank's loss is therefore scaled by
``N * local targets / global targets``, so that the average over ranks is the mean over all the
global batch's targets: with dropout off, the trained weights equal single-process training with
batch size B, up to the order of floating-point sums (``tests/test_distributed.py``). With dropout
on, each rank draws its own masks, so the runs agree in distribution, not in numbers.

Validation, early stopping and the test run on rank 0 with the one evaluation path
(:func:`course_lib.metrics.evaluate`); rank 0 broadcasts whether to stop. The trained weights are
saved by rank 0 as a plain state dict (``torch.save`` of ``model.state_dict()``, written through a
temporary file): the same file single-process training would give, loadable into the model built
from the same settings, with ``weights_only=True``.

A rank that dies makes ``torchrun`` stop the others and exit with an error naming the failed rank;
without ``torchrun``'s supervision, every collective call gives up after ``--timeout`` seconds
instead of waiting forever. On a cluster the command is the same with ``--nnodes`` and
``--rdzv-endpoint=HOST:PORT`` (and ``--rdzv-backend=c10d``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel

from ..constants import PAD_ID
from ..data.batch import Batch
from ..data.files import atomic_path
from ..data.split import TrainingExamples
from ..metrics import evaluate
from ..models.base import Recommender
from ..seeding import set_seed
from ..training import TrainConfig, TrainResult, learning_rate_schedule
from .data import DATASETS, load_dataset
from .registry import MODELS
from .run import history_length, training_examples


class LossOf(nn.Module):
    """Wraps a recommender so that ``forward(batch)`` is its loss: DDP synchronises what goes through ``forward``."""

    def __init__(self, model: Recommender) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, scale: Tensor) -> Tensor:
        return self.model.loss(batch) * scale


def target_count(batch: Batch) -> int:
    """How many targets the loss of ``batch`` averages over: real ``seq_targets`` entries, or one per row."""
    if batch.seq_targets is not None:
        return int((batch.seq_targets != PAD_ID).sum())
    return len(batch.users)


def global_batches(examples: TrainingExamples, batch_size: int, world_size: int, generator: torch.Generator) -> list[Tensor]:
    """One epoch's global batches as index sets: a permutation drawn from ``generator``, cut into ``batch_size``.

    The same draw as :meth:`TrainingExamples.batches` (what single-process :func:`~course_lib.training.fit`
    trains on). A final batch with fewer than ``world_size`` examples is dropped (a rank would get nothing).
    """
    order = torch.randperm(len(examples), generator=generator)
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [b for b in batches if len(b) >= world_size]


def take(examples: TrainingExamples, index: Tensor) -> Batch:
    """The training examples at ``index`` as one batch."""
    return Batch(
        users=examples.users[index], history=examples.history[index], history_times=examples.history_times[index],
        seq_targets=None if examples.seq_targets is None else examples.seq_targets[index],
        targets=None if examples.targets is None else examples.targets[index],
    )


def fit_distributed(
    model: Recommender,
    examples: TrainingExamples,
    valid_batches: Sequence[Batch] | None,
    *,
    config: TrainConfig,
    device: torch.device | str,
) -> TrainResult:
    """Train ``model`` on this rank's share of every global batch; early-stop on rank 0's validation.

    Call it on every rank of an initialised process group with the same model (same seed), the
    same examples and the same config. ``valid_batches`` is read on rank 0 only. The shuffle, the
    validation before the first epoch and the choice of the best epoch are :func:`~course_lib.training.fit`'s;
    with the loss scaling of the module docstring, N processes train the weights ``fit`` would (for
    models whose loss draws no random numbers: sampled negatives and dropout are drawn per rank).

    Returns:
        A :class:`~course_lib.training.TrainResult` (scores are rank 0's); every rank's model holds the
        best epoch's weights.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    if config.batch_size < world:
        raise ValueError(f"the global batch size ({config.batch_size}) must be at least the number of processes ({world}).")
    model.to(device)
    unused = any(p.numel() == 0 for p in model.parameters())  # e.g. the capstone's (0, D) queries with K = 0
    replica = DistributedDataParallel(LossOf(model), find_unused_parameters=unused)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(global_batches(examples, config.batch_size, world, torch.Generator().manual_seed(0)))
    scheduler = learning_rate_schedule(optimizer, config, steps_per_epoch=steps_per_epoch)  # warm-up and decay, as in fit
    generator = torch.Generator().manual_seed(config.seed)  # the same shuffle on every rank, and as in fit
    best_score = evaluate(model, valid_batches, device=device)[config.monitor] if rank == 0 else 0.0  # epoch 0, as in fit
    result = TrainResult(best_epoch=0, best_score=best_score, epochs_run=0, seconds=0.0, stopped_because="epochs")
    best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, steps = 0.0, 0
        for index in global_batches(examples, config.batch_size, world, generator):
            local = take(examples, index[rank::world]).to(device)  # this rank's share of the global batch
            counts = torch.tensor([target_count(local)], dtype=torch.float64)
            everyone = counts.clone()
            dist.all_reduce(everyone)  # targets in the whole global batch
            scale = torch.tensor(float(world * counts / everyone.clamp_min(1)), device=device)
            loss = replica(local, scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages the gradients over the ranks here
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += float(loss.detach()) / float(scale)
            steps += 1
        stop = torch.zeros(1)
        if rank == 0:
            score = evaluate(model, valid_batches, device=device)[config.monitor]
            result.losses.append(total / max(steps, 1))
            result.valid_scores.append(score)
            if score > result.best_score:
                result.best_score, result.best_epoch = score, epoch
                best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
            stop[0] = float(epoch - result.best_epoch >= config.patience)
        dist.broadcast(stop, src=0)  # every rank stops together
        result.epochs_run = epoch
        if stop.item():
            result.stopped_because = "patience"
            break
    best = [best_state]
    dist.broadcast_object_list(best, src=0)  # rank 0 chose the epoch; every replica takes its weights
    model.load_state_dict(best[0])
    result.seconds = time.perf_counter() - start
    return result


def save_state(model: nn.Module, path: Path | str) -> Path:
    """Write ``model.state_dict()`` to ``path`` through a temporary file (loads with ``weights_only=True``)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, temporary)
    return path


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    names = [m.name for m in MODELS]
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m course_lib.bench.distributed",
        description="Train one benchmark model with DistributedDataParallel over the processes torchrun started.",
    )
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--model", default="SASRec", help=f"one of: {', '.join(names)}")
    parser.add_argument("--mode", choices=["notebook", "full"], default="notebook")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="replaces the mode's number of epochs")
    parser.add_argument("--save", type=Path, help="write the trained state dict here (rank 0)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a collective call waits for the other ranks")
    parser.add_argument("--fail-rank", type=int, help="for the demonstration: this rank raises after its first step")
    args = parser.parse_args(argv)
    if args.model.lower() not in {n.lower() for n in names}:
        parser.error(f"unknown model {args.model!r}; known: {', '.join(names)}")
    return args


@record  # a failing rank's traceback goes into torchrun's summary (its "Root Cause")
def main(argv: Sequence[str] | None = None) -> None:
    args = _parse(argv)
    if "RANK" not in os.environ:
        sys.exit("course_lib.bench.distributed runs under torchrun, which sets RANK and WORLD_SIZE:\n"
                 "  python -m torch.distributed.run --nproc_per_node=2 -m course_lib.bench.distributed ml100k --model SASRec")
    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(seconds=args.timeout))
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        entry = next(m for m in MODELS if m.name.lower() == args.model.lower())
        if args.dataset not in entry.datasets:
            raise SystemExit(f"{entry.name} trains on {', '.join(entry.datasets)}, not {args.dataset}.")
        data = load_dataset(args.dataset)
        settings = entry.settings(data, args.mode)
        if settings.train is None:
            raise SystemExit(f"{entry.name} is counted, not trained: nothing to distribute.")
        config = dataclasses.replace(settings.train, seed=args.seed)
        if args.epochs is not None:
            config = dataclasses.replace(config, epochs=args.epochs, patience=args.epochs)
        set_seed(args.seed)
        model = entry.build(data, settings)  # the same weights on every rank
        length = history_length(data, settings)
        if args.fail_rank == rank:
            _fail_after_first_step(model)
        result = fit_distributed(model, training_examples(data, settings), data.batches("valid", length) if rank == 0 else None,
                                 config=config, device=device)
        if rank == 0:
            metrics = evaluate(model, data.batches("test", length), device=device).metrics((10,))
            print(f"{entry.name} on {args.dataset}, {world} processes ({'nccl' if cuda else 'gloo'}), global batch {config.batch_size}: "
                  f"{result.epochs_run} epochs in {result.seconds:.1f} s, best epoch {result.best_epoch}; "
                  f"test HR@10 {metrics['HR@10']:.4f}, NDCG@10 {metrics['NDCG@10']:.4f}")
            if args.save is not None:
                print(f"saved the trained weights to {save_state(model, args.save)}")
    finally:
        dist.destroy_process_group()


def _fail_after_first_step(model: Recommender) -> None:
    """Make this rank raise on its second loss call (the demonstration of a dead rank)."""
    calls = []
    loss = model.loss

    def failing(batch: Batch, **kwargs) -> Tensor:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError(f"rank {dist.get_rank()} failed on purpose (--fail-rank) after one step")
        return loss(batch, **kwargs)

    model.loss = failing


if __name__ == "__main__":
    main()
