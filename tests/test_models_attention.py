"""One way to get attention out of any model: ``model.attention(batch, items) -> AttentionMaps``.

Every model with attention fills the maps it has, with the documented shapes, zero on padding and
rows summing to one over what they attend to; ``recommend`` serves any model whose maps explain a
candidate; models without attention say so. Also: item ids outside 1..I are refused at the boundary.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import TINY_I as I
from factories import TINY_L as L
from factories import history_batch, split_of
from factories import tiny_model as build

from course_lib import PAD_ID
from course_lib.models import (
    GRURec,
    GRURecConfig,
    MatrixFactorization,
    MFConfig,
    Popularity,
)
from course_lib.modes import eval_mode
from course_lib.recommend import ItemCatalogue, recommend


def batch_and_candidates():
    g = torch.Generator().manual_seed(1)
    history = torch.randint(1, I + 1, (3, L), generator=g)
    history[1, :3] = PAD_ID
    history[2, :7] = PAD_ID
    times = 1_000 + torch.cumsum(torch.randint(0, 5_000, (3, L), generator=g), dim=1)
    return history_batch(history, times), torch.randint(1, I + 1, (3, 4), generator=g)


# model -> the maps it must give, as (field, shape) with B = 3, N = 4 candidates
EXPECTED = {
    "SASRec": [("history", (3, 4, L)), ("layers", (3, 2, 2, L, L))],
    "SASRec+time": [("history", (3, 4, L)), ("layers", (3, 2, 2, L, L))],
    "SASRec+text": [("history", (3, 4, L)), ("layers", (3, 2, 2, L, L))],
    "BERT4Rec": [("layers", (3, 2, 2, L, L))],
    "DIN": [("history", (3, 4, L)), ("target", (3, 2, 4, L))],
    "MultiInterest": [("history", (3, 4, L)), ("interests", (3, 3, L))],
    "Capstone": [("history", (3, 4, L)), ("layers", (3, 2, 2, L, L)), ("interests", (3, 3, L)), ("candidate_interests", (3, 4, 3))],
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_model_gives_its_maps_with_documented_shapes(name):
    model = build(name)
    batch, candidates = batch_and_candidates()
    maps = model.attention(batch, candidates)
    real = batch.history != PAD_ID
    for field in ("history", "layers", "target", "interests", "candidate_interests"):
        value = getattr(maps, field)
        shape = dict(EXPECTED[name]).get(field)
        assert (value is None) == (shape is None), f"{name}: {field}"
        if value is None:
            continue
        assert tuple(value.shape) == shape, f"{name}: {field} {tuple(value.shape)}"
        assert torch.isfinite(value).all() and (value >= 0).all()
    if maps.history is not None:  # an explanation: a distribution over the real history events
        assert torch.all(maps.history[~real[:, None, :].expand_as(maps.history)] == 0)
        torch.testing.assert_close(maps.history.sum(-1), torch.ones(3, 4))
    if maps.interests is not None:
        torch.testing.assert_close(maps.interests.sum(-1), torch.ones(maps.interests.shape[:2]))
    if maps.candidate_interests is not None:
        torch.testing.assert_close(maps.candidate_interests.sum(-1), torch.ones(3, 4))


@pytest.mark.parametrize("name", ["SASRec", "SASRec+time", "SASRec+text", "Capstone"])
def test_self_attention_maps_are_causal_and_skip_padding(name):
    model = build(name)
    batch, _ = batch_and_candidates()
    weights = model.attention(batch).layers  # (B, n_layers, H, L, L)
    later = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    assert weights[..., later].abs().max() == 0, "no position attends to a later one"
    pad = batch.history == PAD_ID
    assert torch.all(weights.permute(0, 4, 1, 2, 3)[pad] == 0), "padding keys get zero weight"


def test_multi_interest_history_map_is_the_interest_each_candidate_picks():
    model = build("MultiInterest")
    batch, candidates = batch_and_candidates()
    maps = model.attention(batch, candidates)
    interests, weights = model.pool(batch.history)  # (B, K, D), (B, K, L)
    best = (model.item_embedding(candidates) @ interests.transpose(1, 2)).argmax(-1)  # (B, N)
    for b in range(3):
        for n in range(4):
            torch.testing.assert_close(maps.history[b, n], weights[b, best[b, n]])


@pytest.mark.parametrize("model", [
    Popularity(torch.arange(I + 1).float()), MatrixFactorization(MFConfig(3, I, d_model=4)), GRURec(GRURecConfig(I, d_model=4)),
], ids=["Pop", "MF", "GRU"])
def test_models_without_attention_say_so(model):
    batch, candidates = batch_and_candidates()
    with pytest.raises(NotImplementedError, match="has no attention weights"):
        model.attention(batch, candidates)


@pytest.mark.parametrize("name", ["SASRec", "DIN", "Capstone"])
def test_recommend_serves_any_model_whose_attention_explains_a_candidate(name):
    model = build(name).train()  # recommend puts it in eval mode for the call, then gives it back
    split = split_of([(u, item, 1000 * t) for u in range(4) for t, item in enumerate(range(1 + u, 8 + u))], catalogue=np.arange(1, I + 1))
    catalogue = ItemCatalogue(tuple(["<pad>"] + [f"item {i}" for i in range(1, I + 1)]))
    out = recommend(model, split, catalogue, 2, k=5)
    assert model.training
    assert len(out.items) == 5 and not set(split.sequences[2].tolist()) & set(out.items)
    assert out.scores == sorted(out.scores, reverse=True)
    assert out.attention.shape == (5, len(out.history))
    np.testing.assert_allclose(out.attention.sum(1), 1.0, atol=1e-5)
    assert (out.interest_weights is None) == (name != "Capstone")
    with pytest.raises(TypeError, match="no per-event attention"):
        recommend(build("BERT4Rec"), split, catalogue, 2, k=3)


def test_eval_mode_gives_the_model_back_its_mode_even_after_an_error():
    model = build("SASRec").train()
    with eval_mode(model) as inside:
        assert inside is model and not model.training and not model.encoder.transformer.training
    assert model.training and model.encoder.transformer.training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training


@pytest.mark.parametrize("name", ["SASRec", "BERT4Rec", "DIN", "MultiInterest", "Capstone"])
def test_item_ids_outside_the_catalogue_are_refused_with_the_range(name):
    model = build(name)
    batch, _ = batch_and_candidates()
    top = I + 1 if name == "BERT4Rec" else I  # BERT4Rec's inputs also hold MASK_ID = I + 1
    for bad in (top + 1, -1):
        history = batch.history.clone()
        history[0, -1] = bad
        with pytest.raises(ValueError, match=rf"outside 0\.\.{top}"):
            model.score_all(history_batch(history, batch.history_times))
    with pytest.raises(ValueError, match=r"\(B, L\) of dtype long"):
        model.score_all(history_batch(batch.history.float(), batch.history_times))
