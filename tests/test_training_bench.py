"""The benchmark: one settings record, the command's table on ShopWorld, clear errors, the ablation entries."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from course_lib.bench import (
    MODELS,
    BenchModel,
    Settings,
    Windows,
    build_mf,
    build_popularity,
    load_dataset,
    popularity_settings,
    run_benchmark,
)
from course_lib.bench import run as bench_run
from course_lib.bench import table as bench_table
from course_lib.data.time_buckets import TimeBucketConfig
from course_lib.models import MFConfig, SASRecConfig
from course_lib.models.multimodal.item_encoder import MODALITIES, MultimodalEncoderConfig
from course_lib.training import TrainConfig, TrainResult


def tiny_mf_settings(data, mode):
    return Settings(MFConfig(data.split.num_users, data.split.num_items, d_model=8),
                    TrainConfig(epochs=2, lr=1e-2, batch_size=2048, progress=False))


def test_benchmark_table_on_shopworld(capsys, monkeypatch):
    entries = [BenchModel("Pop", popularity_settings, build_popularity), BenchModel("MF", tiny_mf_settings, build_mf)]
    monkeypatch.setattr(bench_table, "MODELS", entries)  # a small, fast MF so the smoke test stays quick
    bench_table.main(["shopworld", "--models", "Pop", "MF", "--reference", "Pop"])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0] == ("| model | HR@10 | NDCG@10 | ΔNDCG@10 vs Pop [95%] | MRR | coverage@10 | long-tail HR@10 "
                        "| seconds | epochs |")
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:]]
    assert [row[0] for row in cells] == ["Pop", "MF"]
    assert 0.0 <= float(cells[0][1]) <= 1.0
    assert cells[1][8] == "2"  # MF trained its 2 epochs
    assert cells[0][3] == "(reference)"
    mean, low, high = (float(x) for x in cells[1][3].replace("[", "").replace("]", "").replace(",", "").split())
    assert low <= mean <= high
    assert float(cells[1][2]) - float(cells[0][2]) == pytest.approx(mean, abs=2e-4)  # the mean difference of NDCG@10
    data = load_dataset("shopworld")
    longest_seen = max(int((b.seen != 0).sum(1).max()) for b in data.test)
    assert float(cells[0][5]) <= (10 + longest_seen) / data.split.num_items, "Pop's lists come from its top items"
    assert 0.0 <= float(cells[1][6]) <= 1.0


def test_two_references_give_two_difference_columns(capsys, monkeypatch):
    entries = [BenchModel("Pop", popularity_settings, build_popularity), BenchModel("MF", tiny_mf_settings, build_mf)]
    monkeypatch.setattr(bench_table, "MODELS", entries)
    bench_table.main(["shopworld", "--models", "Pop", "MF", "--reference", "Pop", "MF"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].split("|")[1:-1]]
    assert header[3:5] == ["ΔNDCG@10 vs Pop [95%]", "ΔNDCG@10 vs MF [95%]"]
    pop, mf = ([cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:])
    assert pop[3] == "(reference)" and mf[4] == "(reference)"
    assert float(mf[3].split()[0]) == -float(pop[4].split()[0])  # the same paired difference, seen from each side


def test_an_unknown_reference_is_named():
    with pytest.raises(ValueError, match="unknown reference.*SASRec-typo"):
        run_benchmark("shopworld", models=["Pop"], reference=["Pop", "SASRec-typo"])


def test_difference_column_is_a_dash_without_the_reference():
    users = torch.arange(4)
    per_user = {"MF": (users, torch.tensor([0.1, 0.2, 0.0, 0.5]))}
    assert bench_table._difference(per_user, "MF", "SASRec") == "—"
    per_user["SASRec"] = (users.flip(0), torch.zeros(4))
    with pytest.raises(ValueError, match="different users"):
        bench_table._difference(per_user, "MF", "SASRec")


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="known models: Pop, MF"):
        run_benchmark("shopworld", models=["SASRec-typo"])


def test_benchmark_refuses_a_model_that_cannot_train_on_the_dataset():
    with pytest.raises(ValueError, match="cannot train on 'ml100k'"):
        run_benchmark("ml100k", models=["Multimodal"])


def test_settings_refuse_parts_that_disagree():
    model = SASRecConfig(10, max_len=20, d_model=8)
    with pytest.raises(ValueError, match="max_len = 20 positions but the windows have L = 30"):
        Settings(model, TrainConfig(), Windows(max_len=30))
    with pytest.raises(ValueError, match="disagree on d_model: 8 and 16"):
        Settings(model, TrainConfig(), Windows(max_len=20), MultimodalEncoderConfig(10, 5, d_model=16))
    with pytest.raises(ValueError, match="disagree on num_items"):
        Settings(model, TrainConfig(), Windows(max_len=20), MultimodalEncoderConfig(11, 5, d_model=8))
    with pytest.raises(ValueError, match="max_len and stride must be >= 1"):
        Windows(max_len=5, stride=0)
    assert Settings(model, TrainConfig(), Windows(max_len=20)).items is None


@pytest.fixture
def built(monkeypatch):
    """The model a registry entry builds: training is replaced by a stand-in that keeps it in ``built[0]``."""
    models = {}

    def capture(model, examples, valid_batches, *, config, device, cache=None):
        models[0] = model
        return TrainResult(best_epoch=0, best_score=0.0, epochs_run=0, seconds=0.0)

    monkeypatch.setattr(bench_run, "fit", capture)
    return models


def test_single_modality_capstone_entries_build_that_modality_only(built):
    data = load_dataset("shopworld")
    for modality in MODALITIES:
        entry = next(m for m in MODELS if m.name == f"Capstone-{modality}-only")
        assert entry.datasets == ("shopworld",)
        entry.train(data, "notebook", 0, torch.device("cpu"))
        assert built[0].item_encoder.config.modalities == (modality,)
    next(m for m in MODELS if m.name == "Capstone").train(data, "notebook", 0, torch.device("cpu"))
    assert built[0].item_encoder.config.modalities == MODALITIES


def test_user_side_capstone_entries_change_only_what_they_name(built):
    data = load_dataset("shopworld")
    entries = {m.name: m for m in MODELS}
    entries["Capstone"].train(data, "notebook", 0, torch.device("cpu"))
    base = built[0].config
    expected = {f"Capstone-K{k}": {"num_interests": k} for k in (1, 2, 4)} | {
        "Capstone-time-gaps": {"time_gaps": TimeBucketConfig()}, "Capstone-newest-positions": {"positions": "newest"},
        "Capstone-all-parts": {"num_interests": 1, "time_gaps": TimeBucketConfig()},
    }
    for name, changes in expected.items():
        entries[name].train(data, "notebook", 0, torch.device("cpu"))
        assert built[0].config == dataclasses.replace(base, **changes), name
        assert built[0].interest_queries.shape[0] == built[0].config.num_interests
    assert (base.num_interests, base.time_gaps, base.positions) == (0, None, "oldest"), "the ablation's choice; it streams"
