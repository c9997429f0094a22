"""The benchmark command: runs end to end on ShopWorld (generated, no download) and prints one table."""

from __future__ import annotations

import pytest
import torch

from course_lib import bench


def test_benchmark_table_on_shopworld(capsys, monkeypatch):
    # a smaller, faster MF setting so the smoke test stays quick
    monkeypatch.setattr(bench, "mf_settings", lambda mode: (8, bench.TrainConfig(epochs=2, lr=1e-2, batch_size=2048, progress=False)))
    bench.main(["shopworld", "--models", "Pop", "MF"])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0] == "| model | HR@10 | NDCG@10 | MRR | seconds | epochs |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["Pop", "MF"]
    pop_hr = float(lines[2].split("|")[2])
    assert 0.0 <= pop_hr <= 1.0


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="known models: Pop, MF"):
        bench.run_benchmark("shopworld", models=["SASRec-typo"])


def test_benchmark_refuses_a_model_that_cannot_train_on_the_dataset():
    from course_lib.bench import run_benchmark

    with pytest.raises(ValueError, match="cannot train on 'ml100k'"):
        run_benchmark("ml100k", models=["Multimodal"])


def test_single_modality_capstone_entries_build_that_modality_only(monkeypatch):
    from course_lib.models.multimodal.item_encoder import MODALITIES

    built = {}

    def capture(model, data, config, seed, device, **options):  # stands in for training
        built[seed] = model
        return bench.BenchRun(model, 0.0, 0, None)

    monkeypatch.setattr(bench, "fit_on_windows", capture)
    data = bench.load_dataset("shopworld")
    for modality in MODALITIES:
        entry = next(m for m in bench.MODELS if m.name == f"Capstone-{modality}-only")
        assert entry.datasets == ("shopworld",)
        entry.train(data, "notebook", 0, torch.device("cpu"))
        assert built[0].item_encoder.config.modalities == (modality,)
    bench.MODELS[[m.name for m in bench.MODELS].index("Capstone")].train(data, "notebook", 0, torch.device("cpu"))
    assert built[0].item_encoder.config.modalities == MODALITIES
