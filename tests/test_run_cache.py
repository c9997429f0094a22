"""The run cache: a hit gives exactly what training would, any changed input is a miss, a bad file retrains."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from factories import walk_split

from course_lib import run_cache, set_seed, training
from course_lib.bench import BenchData, Settings, Windows, build_din, build_sasrec, train
from course_lib.bench import run as bench_run
from course_lib.data import files
from course_lib.data.split import evaluation_batches, training_windows
from course_lib.models import DINConfig, SASRecConfig
from course_lib.run_cache import run_path
from course_lib.training import TrainConfig, fit


@pytest.fixture
def data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(files.DATA_DIR_ENV_VAR, str(tmp_path / "data"))
    monkeypatch.delenv(run_cache.ENV_VAR, raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def data():
    split = walk_split(users=24, items=15, events=12)
    return BenchData("toy", split, evaluation_batches(split, "valid", max_len=10), evaluation_batches(split, "test", max_len=10))


def settings(data, epochs=2, lr=1e-2):
    model = SASRecConfig(data.split.num_items, max_len=10, d_model=8, n_layers=1, n_heads=2, dropout=0.3)
    return Settings(model, TrainConfig(epochs=epochs, lr=lr, batch_size=8, patience=epochs), Windows(max_len=10))


def weights(run):
    return {name: tensor.clone() for name, tensor in run.model.state_dict().items()}


def refuse_training(*args, **kwargs):
    raise AssertionError("a cache hit must not train")


def test_a_hit_equals_training_and_restores_the_random_state(data, data_folder, monkeypatch):
    first = train(build_sasrec, data, settings(data), seed=0, device="cpu", cache=True)
    after_training = torch.random.get_rng_state()
    files_written = list((data_folder / "runs").glob("SASRec-*.pt"))
    assert not first.cached and len(files_written) == 1

    monkeypatch.setattr(training, "_train", refuse_training)
    second = train(build_sasrec, data, settings(data), seed=0, device="cpu", cache=True)
    assert second.cached and (second.epochs, second.seconds) == (first.epochs, first.seconds)
    for name, tensor in weights(first).items():
        torch.testing.assert_close(second.model.state_dict()[name], tensor, rtol=0, atol=0)
    assert torch.equal(torch.random.get_rng_state(), after_training), "what follows sees the state training left"


def test_the_cached_weights_are_those_of_an_uncached_run(data, data_folder):
    cached = train(build_sasrec, data, settings(data), seed=1, device="cpu", cache=True)
    cached = train(build_sasrec, data, settings(data), seed=1, device="cpu", cache=True)
    fresh = train(build_sasrec, data, settings(data), seed=1, device="cpu")
    assert cached.cached and not fresh.cached
    for name, tensor in weights(fresh).items():
        torch.testing.assert_close(cached.model.state_dict()[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize("change", ["seed", "epochs", "lr", "random state", "initial weights", "data", "threads", "dropout", "objective"])
def test_any_changed_input_is_a_miss(data, data_folder, monkeypatch, change):
    train(build_sasrec, data, settings(data), seed=0, device="cpu", cache=True)
    calls = []
    real_train = training._train
    monkeypatch.setattr(training, "_train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    other_data = data
    if change == "data":
        split = walk_split(users=24, items=15, events=13)
        other_data = BenchData("toy", split, evaluation_batches(split, "valid", max_len=10), evaluation_batches(split, "test", max_len=10))
    if change in ("random state", "initial weights"):
        set_seed(0)
        model = build_sasrec(data, settings(data))
        if change == "initial weights":
            with torch.no_grad():
                next(model.parameters()).add_(1e-3)
        else:
            torch.rand(1)  # the same weights, but dropout would draw other numbers
        run = bench_run.train_model(model, data, settings(data), seed=0, device="cpu", cache=True)
    elif change in ("dropout", "objective"):  # settings that change no initial weight: the same seed builds the same weights
        if change == "dropout":
            changed = dataclasses.replace(settings(data), model=dataclasses.replace(settings(data).model, dropout=0.1))
            run = train(build_sasrec, data, changed, seed=0, device="cpu", cache=True)
        else:
            din = {objective: Settings(DINConfig(data.split.num_items, d_model=8, objective=objective), settings(data).train,
                                       Windows(max_len=10)) for objective in ("softmax", "bce")}
            initial = {}
            for objective, din_settings in din.items():
                set_seed(0)
                initial[objective] = build_din(data, din_settings).state_dict()
            assert all(torch.equal(tensor, initial["bce"][name]) for name, tensor in initial["softmax"].items())
            train(build_din, data, din["softmax"], seed=0, device="cpu", cache=True)
            calls.clear()
            run = train(build_din, data, din["bce"], seed=0, device="cpu", cache=True)
    elif change == "threads":
        threads = torch.get_num_threads()
        torch.set_num_threads(threads + 1)
        try:
            run = train(build_sasrec, data, settings(data), seed=0, device="cpu", cache=True)
        finally:
            torch.set_num_threads(threads)
    else:
        changed = {"epochs": settings(data, epochs=3), "lr": settings(data, lr=5e-3)}.get(change, settings(other_data))
        run = train(build_sasrec, other_data, changed, seed=1 if change == "seed" else 0, device="cpu", cache=True)
    assert not run.cached and calls == [1]


def test_an_unreadable_file_is_reported_and_replaced(data, data_folder):
    first = train(build_sasrec, data, settings(data), seed=2, device="cpu", cache=True)
    (path,) = (data_folder / "runs").glob("SASRec-*.pt")
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match=r"ignoring the cached run .*training again and replacing it"):
        again = train(build_sasrec, data, settings(data), seed=2, device="cpu", cache=True)
    assert not again.cached
    for name, tensor in weights(first).items():
        torch.testing.assert_close(again.model.state_dict()[name], tensor, rtol=0, atol=0)
    third = train(build_sasrec, data, settings(data), seed=2, device="cpu", cache=True)
    assert third.cached, "the replaced file is used next time"
    assert not list((data_folder / "runs").glob("*.part")), "no temporary file is left behind"


def test_a_model_class_from_outside_course_lib_always_trains(data, data_folder):
    class NotebookSASRec(type(build_sasrec(data, settings(data)))):
        pass

    def build(data, settings):
        return NotebookSASRec(settings.model)

    first = train(build, data, settings(data), seed=0, device="cpu", cache=True)
    second = train(build, data, settings(data), seed=0, device="cpu", cache=True)
    assert not first.cached and not second.cached
    assert not (data_folder / "runs").exists() or not list((data_folder / "runs").iterdir())


def test_no_cache_unless_asked(data, data_folder):
    run = train(build_sasrec, data, settings(data), seed=0, device="cpu")
    assert not run.cached and not (data_folder / "runs").exists()
    assert run_path(run.model, "0" * 64, data_folder / "runs").name == f"SASRec-{'0' * 24}.pt"
    assert dataclasses.replace(run, cached=True).cached


def test_a_run_that_cannot_be_kept_is_still_returned(data, data_folder, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training, "save_run", no_space)
    with pytest.warns(UserWarning, match=r"could not keep this run in the run cache .*No space left.*returned all the same"):
        run = train(build_sasrec, data, settings(data), seed=3, device="cpu", cache=True)
    assert not run.cached and run.epochs == 2


def test_fit_keeps_the_whole_result_and_the_environment_switches_it_on(data, data_folder, monkeypatch):
    """What the test command relies on: COURSE_RUN_CACHE=1 makes a plain fit(...) share runs, with its losses."""

    def run(**kwargs):
        set_seed(4)
        model = build_sasrec(data, settings(data))
        examples = training_windows(data.split, max_len=10)
        return model, fit(model, examples, data.valid, config=settings(data).train, device="cpu", **kwargs)

    _, plain = run()
    assert not plain.from_cache and not (data_folder / "runs").exists(), "unset: no cache"
    monkeypatch.setenv(run_cache.ENV_VAR, "1")
    first_model, first = run()
    monkeypatch.setattr(training, "_train", refuse_training)
    second_model, second = run()
    assert not first.from_cache and second.from_cache
    assert dataclasses.replace(second, from_cache=False) == first, "epochs, losses, validation scores and seconds come back"
    for name, tensor in first_model.state_dict().items():
        torch.testing.assert_close(second_model.state_dict()[name], tensor, rtol=0, atol=0)
    monkeypatch.setattr(training, "_train", lambda *a, **k: pytest.fail("cache=True must not train"))
    assert run(cache=True)[1].from_cache
    monkeypatch.setattr(training, "_train", lambda *a, **k: "trained")
    assert run(cache=False)[1] == "trained", "cache=False trains even with the variable set"
    monkeypatch.setenv(run_cache.ENV_VAR, "yes")
    with pytest.raises(ValueError, match=r"COURSE_RUN_CACHE must be 1 .* or 0 .*got 'yes'"):
        run()


def test_settings_of_opens_course_objects_and_refuses_what_it_cannot_hash(data):
    from course_lib.models.generative import GenerativeConfig, GenerativeRecommender

    codes = torch.tensor([[0, 1], [1, 0], [1, 1]])
    model = GenerativeRecommender(GenerativeConfig(level_sizes=(2, 2), max_len=5), codes)
    names = dict(run_cache.settings_of(model))
    assert run_cache.cacheable(model) and torch.equal(names["trie.codes"], codes), "the trie of item codes is part of the key"
    other = GenerativeRecommender(GenerativeConfig(level_sizes=(2, 2), max_len=5), codes.flip(0))
    assert not torch.equal(dict(run_cache.settings_of(other))["trie.codes"], codes)

    sasrec = build_sasrec(data, settings(data))
    sasrec.score_hook = lambda scores: scores  # a function: its effect on training cannot be keyed
    with pytest.raises(TypeError, match=r"cannot hash the setting score_hook \(function\)"):
        run_cache.settings_of(sasrec)
    assert not run_cache.cacheable(sasrec), "such a model always trains"
