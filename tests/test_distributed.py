"""Data-parallel training: 2 processes train the weights single-process training would; a dead rank fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from factories import walk_split

from course_lib import set_seed
from course_lib.bench.distributed import fit_distributed, global_batches, take, target_count
from course_lib.data.split import evaluation_batches, training_windows
from course_lib.models import SASRec, SASRecConfig
from course_lib.training import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
CONFIG = TrainConfig(epochs=3, lr=1e-2, batch_size=6, patience=3, seed=0, progress=False)


def tiny_problem():
    split = walk_split(users=20, items=12, events=10)
    examples = training_windows(split, max_len=6, stride=2)
    set_seed(0)
    model = SASRec(SASRecConfig(split.num_items, max_len=6, d_model=8, n_heads=2, n_layers=1, dropout=0.0))
    return model, examples, evaluation_batches(split, "valid", max_len=6)


def _rank(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model, examples, valid = tiny_problem()
        result = fit_distributed(model, examples, valid if rank == 0 else None, config=CONFIG, device="cpu")
        torch.save({"state": model.state_dict(), "epochs": result.epochs_run, "best": result.best_epoch}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_processes_train_what_fit_trains(tmp_path):
    model, examples, valid = tiny_problem()
    assert len(examples) % CONFIG.batch_size != 0, "the last, smaller global batch is part of the check"
    reference = fit(model, examples, valid, config=CONFIG, device="cpu")
    mp.spawn(_rank, args=(2, str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2, join=True)
    ranks = [torch.load(f"{tmp_path / 'out'}.{r}", weights_only=True) for r in range(2)]
    assert ranks[0]["epochs"] == reference.epochs_run and ranks[0]["best"] == reference.best_epoch
    # The key projection's bias adds q . b to every score of a row, which the softmax ignores: its true
    # gradient is 0, and Adam scales the float noise of that 0 up to full steps, differently in every run.
    # Every other weight agrees to 1e-6 (sums in another order), and so do the scores, which the key bias cannot move.
    irrelevant = "encoder.transformer.blocks.0.attention.k_proj.bias"
    for name, tensor in model.state_dict().items():
        for saved in ranks:
            if name != irrelevant:
                torch.testing.assert_close(saved["state"][name], tensor, rtol=0, atol=1e-6, msg=name)
    replica = tiny_problem()[0]
    replica.load_state_dict(ranks[1]["state"])
    for batch in valid:
        torch.testing.assert_close(replica.eval().score_all(batch), model.eval().score_all(batch), rtol=0, atol=1e-5)
    untrained = tiny_problem()[0].state_dict()["item_encoder.weight"]
    assert (model.state_dict()["item_encoder.weight"] - untrained).abs().max() > 1e-3, "training moved the weights"


def test_global_batches_cover_every_example_once_and_split_between_ranks():
    _, examples, _ = tiny_problem()
    batches = global_batches(examples, 6, 2, torch.Generator().manual_seed(0))
    seen = torch.cat(batches)
    assert sorted(seen.tolist()) == list(range(len(examples)))
    assert torch.equal(seen, torch.randperm(len(examples), generator=torch.Generator().manual_seed(0))), "fit's order"
    index = batches[0]
    shares = [take(examples, index[r::2]) for r in range(2)]
    assert sum(target_count(s) for s in shares) == target_count(take(examples, index))
    five_ranks = global_batches(examples, 12, 5, torch.Generator().manual_seed(0))  # 40 = 3 x 12 + 4: the 4 are dropped
    assert [len(b) for b in five_ranks] == [12, 12, 12], "a last batch smaller than the world would leave a rank empty"


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--max-restarts=0",
               "-m", "course_lib.bench.distributed", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.timeout(300)
def test_torchrun_trains_and_saves_a_state_dict_the_single_process_model_loads(tmp_path):
    path = tmp_path / "mf.pt"
    run = torchrun("shopworld", "--model", "MF", "--epochs", "1", "--save", str(path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "MF on shopworld, 2 processes (gloo)" in run.stdout and "test HR@10" in run.stdout
    from course_lib.bench import load_dataset, mf_settings
    from course_lib.bench.recipes.baselines import build_mf

    data = load_dataset("shopworld")
    model = build_mf(data, mf_settings(data, "notebook"))
    model.load_state_dict(torch.load(path, weights_only=True))
    assert not list(tmp_path.glob("*.part")), "no temporary file left behind"


@pytest.mark.timeout(300)
def test_a_dead_rank_fails_the_run_instead_of_hanging():
    run = torchrun("shopworld", "--model", "MF", "--epochs", "2", "--fail-rank", "1", "--timeout", "30")
    assert run.returncode != 0
    assert "failed on purpose (--fail-rank)" in run.stderr, run.stderr[-3000:]


def test_without_torchrun_it_says_how_to_start():
    run = subprocess.run([sys.executable, "-m", "course_lib.bench.distributed", "shopworld"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}, cwd=ROOT, timeout=120)
    assert run.returncode != 0 and "runs under torchrun" in run.stderr and "--nproc_per_node=2" in run.stderr
