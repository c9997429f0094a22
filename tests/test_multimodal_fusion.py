"""Fusion strategies, the multimodal item encoder and the multimodal SASRec."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch

from course_lib.bench import BenchData, build_sasrec, multimodal_settings, train
from course_lib.data import evaluation_batches, temporal_leave_one_out
from course_lib.data.shopworld import ShopWorldConfig, generate_shopworld, shopworld_features
from course_lib.metrics import evaluate
from course_lib.models.item_encoders import lookup, make_item_encoder
from course_lib.models.multimodal import (
    FUSIONS,
    MODALITIES,
    ConcatFusion,
    CrossModalFusion,
    GatedModalityFusion,
    ModalityStates,
    MultimodalEncoderConfig,
    MultimodalItemEncoder,
    modality_weights,
)
from course_lib.models.sasrec import SASRec
from course_lib.training import TrainConfig

D = 16


@pytest.fixture(scope="module")
def world():
    return generate_shopworld(ShopWorldConfig(num_items=96, num_users=30, seed=3))


@pytest.fixture(scope="module")
def features(world):
    return shopworld_features(world)


def _states(seed, batch=3, tokens=4, patches=9, pad_tokens=(), pad_patches=()):
    g = torch.Generator().manual_seed(seed)
    text_mask = torch.ones(batch, tokens, dtype=torch.bool)
    for b, t in pad_tokens:
        text_mask[b, t] = False
    image_mask = torch.ones(batch, patches, dtype=torch.bool)
    for b, p in pad_patches:
        image_mask[b, p] = False
    text = ModalityStates(torch.randn(batch, D, generator=g), torch.randn(batch, tokens, D, generator=g), text_mask)
    image = ModalityStates(torch.randn(batch, D, generator=g), torch.randn(batch, patches, D, generator=g), image_mask)
    return torch.randn(batch, 4, D, generator=g), text, image


# ---- modality weights: softmax over the modality axis ----------------------------------------


@pytest.mark.parametrize("seed, batch, m", [(0, 3, 4), (1, 5, 2), (2, 1, 3)])
def test_modality_weights_sum_to_one_over_modalities(seed, batch, m):
    scores = torch.randn(batch, m, generator=torch.Generator().manual_seed(seed)) * 3
    weights = modality_weights(scores)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))
    torch.testing.assert_close(weights, torch.exp(scores) / torch.exp(scores).sum(1, keepdim=True))


def test_softmax_over_a_size_one_axis_is_the_bug_and_is_refused():
    scores = torch.randn(4, 3, 1)  # one score per modality, with a trailing axis of size 1
    wrong = torch.softmax(scores, dim=-1)  # the source articles' version
    assert torch.all(wrong == 1.0)  # every modality gets weight 1, whatever the scores: no gating
    assert not torch.allclose(wrong.sum(dim=1), torch.ones(4, 1))  # sums to M, not 1
    with pytest.raises(ValueError, match="squeeze"):
        modality_weights(scores)


# ---- the three fusions --------------------------------------------------------------------------


def test_concat_fusion_is_a_linear_map_of_the_concatenation():
    torch.manual_seed(0)
    fusion = ConcatFusion(4, D)
    vectors, _, _ = _states(0)
    out = fusion(vectors)
    expected = torch.cat([vectors[:, m] for m in range(4)], dim=-1) @ fusion.project.weight.T + fusion.project.bias
    torch.testing.assert_close(out.vector, expected)
    assert out.modality_weights is None and out.cross_weights is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gated_fusion_weights_and_output_by_hand(seed):
    torch.manual_seed(seed)
    fusion = GatedModalityFusion(4, D)
    with torch.no_grad():
        fusion.modality_bias.normal_()
    vectors, _, _ = _states(seed)
    out = fusion(vectors)
    assert out.modality_weights.shape == (3, 4)
    torch.testing.assert_close(out.modality_weights.sum(dim=1), torch.ones(3))  # over modalities
    scores = torch.stack(
        [torch.tanh(fusion.gate_in(vectors[:, m]) + fusion.modality_bias[m]) @ fusion.gate_out.weight[0] for m in range(4)],
        dim=1,
    )  # (B, M)
    weights = torch.softmax(scores, dim=1)
    torch.testing.assert_close(out.modality_weights, weights)
    mixed = sum(weights[:, m : m + 1] * vectors[:, m] for m in range(4))
    torch.testing.assert_close(out.vector, fusion.project(mixed))
    assert not torch.allclose(out.modality_weights, torch.full_like(weights, 0.25))  # the gate does gate


@pytest.mark.parametrize("seed, heads", [(0, 1), (1, 2), (2, 4)])
def test_cross_modal_weights_rows_sum_to_one_over_real_patches(seed, heads):
    torch.manual_seed(seed)
    fusion = CrossModalFusion(4, D, n_heads=heads)
    vectors, text, image = _states(seed, pad_tokens=[(0, 3), (2, 0)], pad_patches=[(1, 4), (1, 5)])
    out = fusion(vectors, text=text, image=image)
    w = out.cross_weights
    assert out.vector.shape == (3, D) and w.shape == (3, heads, 4, 9)
    real_rows = text.token_mask[:, None, :].expand(3, heads, 4)
    torch.testing.assert_close(w.sum(-1)[real_rows], torch.ones(int(real_rows.sum())))
    assert torch.all(w.sum(-1)[~real_rows] == 0)  # padding tokens attend to nothing
    assert torch.all(w[1, :, :, 4:6] == 0)  # masked patches receive nothing
    # the weights are softmax(q k^T / sqrt(Dh)) over the real patches, with the module's projections
    att = fusion.cross_attention
    q = att.q_proj(text.states).view(3, 4, heads, D // heads).transpose(1, 2)
    k = att.k_proj(image.states).view(3, 9, heads, D // heads).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2) / math.sqrt(D // heads)).masked_fill(~image.token_mask[:, None, None, :], -torch.inf)
    expected = torch.softmax(scores, dim=-1) * text.token_mask[:, None, :, None]
    torch.testing.assert_close(w, expected)


def test_fusion_errors():
    vectors, text, image = _states(0)
    with pytest.raises(ValueError, match="text and the image"):
        CrossModalFusion(4, D)(vectors, text=text)
    with pytest.raises(ValueError, match=r"\(B, M=3, D=16\)"):
        ConcatFusion(3, D)(vectors)
    with pytest.raises(ValueError, match=r"\(B, M=4, D=16\)"):
        GatedModalityFusion(4, D)(vectors[:, :, :8])


# ---- the item encoder ---------------------------------------------------------------------------


def _encoder(world, features, modalities=MODALITIES, fusion="concat", seed=0):
    torch.manual_seed(seed)
    config = MultimodalEncoderConfig(
        world.num_items, len(world.vocabulary), modalities=modalities, fusion=fusion, d_model=D, patch_size=8, dropout=0.0
    )
    return MultimodalItemEncoder(config, features)


SUBSETS = [s for r in range(1, 5) for s in itertools.combinations(MODALITIES, r)]


@pytest.mark.parametrize("modalities", SUBSETS, ids="+".join)
def test_item_encoder_every_subset_shapes_and_padding(world, features, modalities):
    encoder = _encoder(world, features, modalities).eval()
    items = torch.tensor([0, 3, 7, 0, 96])
    enc = encoder.encode(items)
    assert enc.vectors.shape == (5, D) and enc.modality_vectors.shape == (5, len(modalities), D)
    assert enc.modalities == tuple(m for m in MODALITIES if m in modalities)
    assert torch.all(enc.vectors[[0, 3]] == 0)  # PAD_ID -> zero vector
    assert torch.isfinite(enc.vectors).all()
    # the catalogue's table holds the same vectors as encode; a lookup reads any shape from it
    table = encoder.table()
    assert table.shape == (world.num_items + 1, D) and torch.all(table[0] == 0)
    grid = torch.tensor([[3, 7], [96, 3]])
    torch.testing.assert_close(lookup(table, grid), enc.vectors[[1, 2, 4, 1]].reshape(2, 2, D), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(table[[3, 7]], enc.vectors[[1, 2]], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_gradients_reach_every_modality_encoder(world, features, fusion):
    encoder = _encoder(world, features, MODALITIES, fusion)
    enc = encoder.encode(torch.arange(1, 13))
    (enc.vectors**2).sum().backward()
    for name, module in [
        ("id", encoder.id_embedding), ("price", encoder.price_embedding),
        ("image", encoder.image_encoder), ("text", encoder.text_encoder), ("fusion", encoder.fusion),
    ]:
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), f"{fusion}: a {name} parameter got no gradient"
        assert sum(float(g.abs().sum()) for g in grads) > 0, f"{fusion}: no gradient reaches the {name} encoder"
    if fusion == "gated":
        assert enc.modality_weights.shape == (12, 4)
        torch.testing.assert_close(enc.modality_weights.sum(1), torch.ones(12))
    if fusion == "cross":
        t, p = features.text_tokens.shape[1], (24 // 8) ** 2
        assert enc.cross_weights.shape == (12, 2, t, p)


def test_item_encoder_errors(world, features):
    with pytest.raises(ValueError, match="subset"):
        MultimodalEncoderConfig(96, 25, modalities=("id", "colour"))
    with pytest.raises(ValueError, match="subset"):
        MultimodalEncoderConfig(96, 25, modalities=())
    with pytest.raises(ValueError, match="needs 'image' and 'text'"):
        MultimodalEncoderConfig(96, 25, modalities=("id", "text"), fusion="cross")
    with pytest.raises(ValueError, match="fusion must be"):
        MultimodalEncoderConfig(96, 25, fusion="sum")
    encoder = _encoder(world, features)
    with pytest.raises(ValueError, match="0..96"):
        encoder.encode(torch.tensor([1, 97]))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        encoder.encode(torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="features describe 96 items"):
        MultimodalItemEncoder(MultimodalEncoderConfig(50, len(world.vocabulary)), features)
    with pytest.raises(TypeError, match="needs MultimodalFeatures"):
        make_item_encoder(MultimodalEncoderConfig(96, len(world.vocabulary)), torch.zeros(96, 4))


def test_features_are_buffers_not_saved(world, features):
    encoder = _encoder(world, features)
    assert "images" not in encoder.state_dict() and "text_tokens" not in encoder.state_dict()
    assert {n for n, _ in encoder.named_buffers()} >= {"images", "text_tokens", "price_buckets"}


# ---- the multimodal SASRec: SASRec with the multimodal item encoder ----------------------------


@pytest.fixture(scope="module")
def split(world):
    return temporal_leave_one_out(world.interactions, catalogue=world.items.index)


@pytest.fixture(scope="module")
def data(world, split):
    return BenchData("shopworld", split, evaluation_batches(split, "valid", max_len=30),
                     evaluation_batches(split, "test", max_len=30), world=world)


def _model(data, fusion="gated", modalities=MODALITIES, seed=0):
    torch.manual_seed(seed)
    return build_sasrec(data, multimodal_settings(data, "notebook", modalities=modalities, fusion=fusion))


@pytest.mark.parametrize("fusion", FUSIONS)
def test_multimodal_sasrec_interface_and_shared_table(data, fusion):
    model = _model(data, fusion).eval()
    assert isinstance(model, SASRec) and isinstance(model.item_encoder, MultimodalItemEncoder)
    assert not hasattr(model, "item_embedding") and not hasattr(model, "_item_table"), "no per-call table on the module"
    batch = data.test[0]
    with torch.no_grad():
        scores = model.score_all(batch)  # one encoder pass shared by inputs and outputs
        assert scores.shape == (len(batch), data.world.num_items)
        # the same scores from the parts: the table, the hidden states it gives, the tied output
        table = model.item_encoder.table()
        by_parts = model(batch.history, batch.history_times, table=table)[:, -1] @ table[1:].T
    torch.testing.assert_close(scores, by_parts, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.score(batch, batch.targets[:, None]), scores.gather(1, batch.targets[:, None] - 1))
    metrics = evaluate(model, [batch]).metrics((10,))
    assert 0.0 <= metrics["NDCG@10"] <= 1.0


def test_multimodal_sasrec_is_causal(data):
    model = _model(data, "cross").eval()
    history = data.test[0].history[:4]
    changed = history.clone()
    changed[:, 20] = changed[:, 20] % data.world.num_items + 1
    with torch.no_grad():
        before, after = model(history), model(changed)
    torch.testing.assert_close(after[:, :20], before[:, :20])
    assert not torch.allclose(after[:, 20:], before[:, 20:])


def test_training_the_multimodal_sasrec_is_deterministic(data, split):
    settings = multimodal_settings(data, "notebook", fusion="gated")
    settings = dataclasses.replace(settings, train=TrainConfig(epochs=2, lr=5e-3, batch_size=16, patience=2))
    runs = [train(build_sasrec, data, settings, seed=0, device="cpu") for _ in range(2)]
    assert isinstance(runs[0].model.item_encoder, MultimodalItemEncoder) and runs[0].epochs == 2
    with torch.no_grad():
        a, b = (r.model.eval().score_all(data.test[0]) for r in runs)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="only 'shopworld'"):
        multimodal_settings(BenchData("ml100k", split, data.valid, data.test), "notebook")


def test_split_ids_must_match_world(data, split):
    other = generate_shopworld(ShopWorldConfig(num_items=112, num_users=30, seed=3))
    mismatched = dataclasses.replace(data, world=other)
    with pytest.raises(ValueError, match="item ids"):
        build_sasrec(mismatched, multimodal_settings(mismatched, "notebook"))
    assert np.array_equal(split.item_ids[1:], data.world.items.index.to_numpy())
