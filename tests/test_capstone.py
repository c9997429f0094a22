"""The capstone: causal, padding-invariant, right shapes, its speed path, save/load round trip, recommend's errors."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch
from factories import history_batch, split_of

from course_lib import PAD_ID
from course_lib.bench import capstone_settings
from course_lib.bench.sweep import parse_variant
from course_lib.checkpoints import load_capstone, save_capstone
from course_lib.data.item_features import MetadataFeatures, MultimodalFeatures, year_buckets
from course_lib.data.split import evaluation_batches
from course_lib.data.time_buckets import TimeBucketConfig
from course_lib.explain import interest_alignment
from course_lib.models.capstone import CapstoneConfig, CapstoneRecommender
from course_lib.models.item_encoders import lookup, make_item_encoder
from course_lib.models.metadata_encoder import MetadataEncoderConfig, MetadataItemEncoder
from course_lib.models.multimodal import MultimodalEncoderConfig, MultimodalItemEncoder
from course_lib.recommend import ItemCatalogue, recommend

I = 25  # catalogue size of the toy tests
CONFIG = CapstoneConfig(I, max_len=12, d_model=16, n_heads=2, n_layers=2, dropout=0.1, num_interests=2)


def toy_metadata(seed: int = 0) -> MetadataFeatures:
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(I + 1, 10, generator=g)
    genres = (torch.rand(I + 1, 19, generator=g) < 0.2).float()
    years = torch.randint(0, 13, (I + 1,), generator=g)
    text[PAD_ID], genres[PAD_ID], years[PAD_ID] = 0, 0, 0
    return MetadataFeatures(text=text, genres=genres, year_buckets=years)


def toy_images(seed: int = 0) -> MultimodalFeatures:
    g = torch.Generator().manual_seed(seed)
    return MultimodalFeatures(
        images=torch.rand(I + 1, 3, 24, 24, generator=g),
        text_tokens=torch.randint(1, 9, (I + 1, 4), generator=g),
        price_buckets=torch.randint(0, 4, (I + 1,), generator=g),
    )


def item_encoder(kind: str, seed: int, d_model: int) -> MetadataItemEncoder | MultimodalItemEncoder:
    if kind == "metadata":
        return MetadataItemEncoder(MetadataEncoderConfig(I, text_dim=10, d_model=d_model), toy_metadata(seed))
    config = MultimodalEncoderConfig(I, 9, fusion="gated", d_model=d_model, patch_size=8, n_heads=2, dropout=0.1)
    return MultimodalItemEncoder(config, toy_images(seed))


def make_model(seed: int, kind: str = "metadata", config: CapstoneConfig = CONFIG) -> CapstoneRecommender:
    torch.manual_seed(seed)
    model = CapstoneRecommender(config, item_encoder(kind, seed, config.d_model))
    with torch.no_grad():  # make time vectors and interest queries large enough to matter
        model.encoder.time_gaps.weight[1:].normal_(std=1.0)
        model.interest_queries.normal_(std=1.0)
    return model.eval()


def random_case(seed: int, batch: int, length: int, pad_left: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, I + 1, (batch, length), generator=g)
    times = 1_000_000 + torch.cumsum(torch.randint(0, 3_000, (batch, length), generator=g), dim=1)
    history[:, :pad_left] = PAD_ID
    times[:, :pad_left] = 0
    return history, times


def test_composes_an_item_encoder_and_a_time_aware_sequence_encoder():
    model = make_model(0)
    assert isinstance(model.item_encoder, MetadataItemEncoder) and model.encoder.time_gaps is not None
    assert not hasattr(model, "item_embedding"), "item vectors come from the item encoder only"
    assert model.interest_queries.shape == (2, 16)
    with pytest.raises(ValueError, match="D = 32"):
        CapstoneRecommender(CapstoneConfig(I, d_model=32), model.item_encoder)
    with pytest.raises(ValueError, match="num_interests"):
        CapstoneConfig(I, num_interests=-1)


@pytest.mark.parametrize("kind", ["metadata", "multimodal"])
@pytest.mark.parametrize("seed", [0, 1])
def test_shapes_and_interface(kind, seed):
    model = make_model(seed, kind)
    history, times = random_case(seed, 3, 12, pad_left=4)
    batch = history_batch(history, times)
    with torch.no_grad():
        state = model.user_state(history, times)
        everything = model.score_all(batch)
        some = model.score(batch, torch.tensor([[1, 5, 7]] * 3))
        maps = model.attention(batch, torch.tensor([[1, 5, 7]] * 3))
    weights, interest_weights = maps.history, maps.candidate_interests
    assert state.interests.shape == (3, 12, 3, 16)
    assert state.event_weights.shape == (3, 12, 3, 12)
    assert everything.shape == (3, I)
    torch.testing.assert_close(some, everything[:, [0, 4, 6]])
    assert weights.shape == (3, 3, 12) and interest_weights.shape == (3, 3, 3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 3))  # a distribution over the history events
    assert torch.all(weights[:, :, :4] == 0), "padding gets no attention"
    torch.testing.assert_close(interest_weights.sum(-1), torch.ones(3, 3))
    assert maps.interests.shape == (3, 3, 12) and maps.layers.shape == (3, 2, 2, 12, 12)
    torch.testing.assert_close(weights, interest_weights @ maps.interests)  # sum_k a_k(c) A_k over the events
    assert model.attention(batch).history is None, "without candidates there is no per-candidate explanation"


def test_score_is_the_log_sum_exp_over_interests_and_its_gradient_is_the_attention():
    model = make_model(4)
    history, times = random_case(4, 2, 12, pad_left=2)
    state = model.user_state(history, times)
    interests = state.interests[:, -1]  # (B, K + 1, D)
    items = model.item_encoder.table()[1:]  # (I, D)
    by_hand = torch.stack([torch.logsumexp(interests[b] @ items.T, dim=0) for b in range(2)])
    torch.testing.assert_close(model.interest_item_scores(interests, items), by_hand)
    logits = (interests @ items.T).detach().requires_grad_(True)  # (B, K + 1, I)
    torch.logsumexp(logits, dim=1).sum().backward()
    torch.testing.assert_close(logits.grad.transpose(1, 2), model.interest_weights(interests, items))


@pytest.mark.parametrize("kind", ["metadata", "multimodal"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_later_event_does_not_change_earlier_positions(kind, seed):
    model = make_model(seed, kind)
    history, times = random_case(seed, 3, 12, pad_left=3)
    items = model.item_encoder.table()[1:].detach()
    with torch.no_grad():
        before = model.interest_item_scores(model.user_state(history, times).interests, items)  # (B, L, I)
        for cut in (4, 8, 11):
            changed = history.clone()
            changed[:, cut] = (changed[:, cut] % I) + 1
            later = times.clone()
            later[:, cut:] += 10**6
            for h, t in ((changed, times), (history, later)):
                after = model.interest_item_scores(model.user_state(h, t).interests, items)
                torch.testing.assert_close(after[:, :cut], before[:, :cut])
                assert not torch.allclose(after[:, cut], before[:, cut]), "the changed position itself must change"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_left_padding_does_not_change_scores_or_explanations(seed):
    model = make_model(seed, config=dataclasses.replace(CONFIG, max_len=16, dropout=0.2))
    history, times = random_case(seed, 3, 9)
    padded = history_batch(torch.cat([torch.full((3, 7), PAD_ID), history], 1), torch.cat([torch.zeros(3, 7, dtype=torch.long), times], 1))
    short = history_batch(history, times)
    candidates = torch.tensor([[2, 3]] * 3)
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(padded), model.score_all(short), atol=1e-5, rtol=1e-5)
        long_weights = model.attention(padded, candidates).history
        short_weights = model.attention(short, candidates).history
    torch.testing.assert_close(long_weights[:, :, 7:], short_weights, atol=1e-5, rtol=1e-5)
    assert torch.all(long_weights[:, :, :7] == 0)


def test_loss_trains_every_part_and_is_finite():
    model = make_model(5, "multimodal").train()
    history, times = random_case(5, 4, 12, pad_left=2)
    targets = torch.randint(1, I + 1, (4, 12))
    targets[:, :2] = PAD_ID
    loss = model.loss(history_batch(history, times, seq_targets=targets))
    assert torch.isfinite(loss)
    loss.backward()
    for name in ("interest_queries", "encoder.time_gaps.weight", "item_encoder.id_embedding.weight",
                 "item_encoder.image_encoder.patch_embedding.weight", "item_encoder.text_encoder.token_embedding.weight",
                 "item_encoder.price_embedding.weight", "item_encoder.fusion.gate_in.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize("kind", ["metadata", "multimodal"])
def test_save_and_load_give_identical_scores(tmp_path, kind):
    model = make_model(6, kind)
    features = toy_metadata(6) if kind == "metadata" else toy_images(6)
    history, times = random_case(6, 3, 12, pad_left=5)
    batch = history_batch(history, times)
    path = save_capstone(model, tmp_path / "sub" / "capstone.pt")
    assert path.exists() and not list(path.parent.glob("*.part")), "no temporary file is left behind"
    loaded = load_capstone(path, features)
    with torch.no_grad():
        torch.testing.assert_close(loaded.score_all(batch), model.score_all(batch), rtol=0, atol=0)
    assert loaded.config == model.config
    raw = torch.load(path, weights_only=True)  # plain data only
    assert set(raw) == {"format", "config", "encoder", "encoder_config", "features", "state_dict"}
    wrong = toy_images(6) if kind == "metadata" else toy_metadata(6)
    with pytest.raises(TypeError, match="needs"):
        load_capstone(path, wrong)


def test_load_refuses_a_file_that_is_not_a_capstone(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a capstone file"):
        load_capstone(path, toy_metadata())


def tiny_split():
    return split_of([(u, item, 1000 * t) for u in range(4) for t, item in enumerate(range(1 + u, 8 + u))], catalogue=np.arange(1, I + 1))


def test_recommend_returns_unseen_items_with_their_attention():
    model = make_model(7)
    split = tiny_split()
    catalogue = ItemCatalogue(tuple(["<pad>"] + [f"item {i}" for i in range(1, I + 1)]))
    out = recommend(model, split, catalogue, 2, k=5)
    seen = set(split.sequences[2].tolist())
    assert len(out.items) == 5 and not seen & set(out.items)
    assert out.titles == [f"item {i}" for i in out.items]
    assert out.scores == sorted(out.scores, reverse=True)
    assert out.history == split.sequences[2].tolist()
    assert out.attention.shape == (5, len(out.history))
    np.testing.assert_allclose(out.attention.sum(1), 1.0, atol=1e-5)
    assert out.table().shape[0] == 5


@pytest.mark.parametrize("bad", [4, -1, 10**6, "0", 1.0, True, None])
def test_recommend_names_the_valid_range_for_an_unknown_user(bad):
    model = make_model(8)
    catalogue = ItemCatalogue(tuple(["<pad>"] + [f"item {i}" for i in range(1, I + 1)]))
    with pytest.raises(ValueError, match=r"valid user ids are the user indices 0\.\.3"):
        recommend(model, tiny_split(), catalogue, bad, k=3)


def test_interest_alignment_against_a_hand_computation():
    model = make_model(9)
    split = tiny_split()
    # interests of each event row: user u's events alternate 0, 1, 0, ...; the target (last event) has interest 0
    event_interest = np.zeros(sum(len(s) for s in split.sequences), dtype=np.int64)
    for rows in split.rows:
        event_interest[rows] = np.arange(len(rows)) % 2
        event_interest[rows[-1]] = 0
    batches = evaluation_batches(split, "test", max_len=CONFIG.max_len)
    result = interest_alignment(model, split, event_interest, batches)
    weights = model.attention(batches[0], batches[0].targets[:, None]).history
    same = torch.zeros_like(weights[:, 0])
    for b, rows in enumerate(split.rows):
        inputs = event_interest[rows[:-1]] == 0  # the history = every event but the test target
        same[b, -len(inputs):] = torch.from_numpy(inputs).float()
    torch.testing.assert_close(torch.from_numpy(result.share).float(), (weights[:, 0] * same).sum(1))
    np.testing.assert_allclose(result.uniform, [3 / 6] * 4)  # histories 0, 1, 0, 1, 0, 1


def test_year_buckets():
    assert year_buckets([None, 1930, 1950, 1979, 1995, 1998, np.nan]).tolist() == [0, 1, 2, 4, 9, 12, 0]


@pytest.mark.parametrize("num_interests", [0, 1, 3])
@pytest.mark.parametrize("tau", [1.0, 0.3])
def test_the_speed_path_equals_the_plain_log_sum_exp(num_interests, tau):
    """interest_item_scores is the formula; interest_item_scores_fast (K + 1 = 1 or 2 shortcuts) equals it."""
    torch.manual_seed(10)
    config = CapstoneConfig(I, max_len=6, d_model=8, num_interests=num_interests, interest_temperature=tau)
    model = CapstoneRecommender(config, MetadataItemEncoder(MetadataEncoderConfig(I, text_dim=10, d_model=8), toy_metadata(10)))
    interests = torch.randn(2, 4, num_interests + 1, 8)
    items = torch.randn(I, 8)
    expected = tau * torch.logsumexp(torch.einsum("blkd,id->blki", interests, items) / tau, dim=2)
    torch.testing.assert_close(model.interest_item_scores(interests, items), expected)
    torch.testing.assert_close(model.interest_item_scores_fast(interests, items), expected)
    per_row = items.expand(2, 4, I, 8)  # (..., N, D) candidates per row take the general path
    torch.testing.assert_close(model.interest_item_scores(interests, per_row), expected)
    torch.testing.assert_close(model.interest_item_scores_fast(interests, per_row), expected)


def test_metadata_encoder_gated_weights_and_sum_fusion():
    features = toy_metadata(11)
    torch.manual_seed(11)
    gated = MetadataItemEncoder(MetadataEncoderConfig(I, text_dim=10, d_model=16), features)
    encoding = gated.encode(torch.arange(I + 1))
    assert encoding.modality_weights.shape == (I + 1, 3)
    torch.testing.assert_close(encoding.modality_weights.sum(1), torch.ones(I + 1))  # over the 3 modalities
    assert torch.all(encoding.vectors[PAD_ID] == 0)
    summed = MetadataItemEncoder(MetadataEncoderConfig(I, text_dim=10, d_model=16, fusion="sum"), features)
    items = torch.tensor([3, 7])
    by_hand = (summed.id_embedding(items) + summed.text_projection(features.text[items])
               + summed.genre_projection(features.genres[items]) + summed.year_embedding(features.year_buckets[items]))
    torch.testing.assert_close(lookup(summed.table(), items), by_hand)
    torch.testing.assert_close(summed.encode(items).vectors, by_hand)
    assert torch.all(summed.table()[PAD_ID] == 0)
    with pytest.raises(ValueError, match="fusion must be 'gated' or 'sum'"):
        # ShopWorld's fusions are not MovieLens's
        make_item_encoder(MetadataEncoderConfig(I, text_dim=10, d_model=16, fusion="cross"), features)


def fake_movielens_data(items: int = I):
    """What capstone_settings reads of a BenchData for ML-100K (no download, no text embeddings)."""
    return types.SimpleNamespace(name="ml100k", world=None, movielens=object(), split=types.SimpleNamespace(num_items=items))


def test_sweep_variants_change_only_what_they_name():
    data = fake_movielens_data()
    full = capstone_settings(data, "full")
    assert parse_variant("base", data).settings == full
    variant = parse_variant("layers=2,heads=4,lr=1e-3,stride=25,fusion=sum", data, epochs=7).settings
    assert (variant.model.n_layers, variant.model.n_heads) == (2, 4)
    assert variant.model.d_model == full.model.d_model
    assert (variant.train.lr, variant.train.epochs, variant.train.patience) == (1e-3, 7, 7)
    assert (variant.windows.stride, variant.items.fusion) == (25, "sum")
    wider = parse_variant("D=32,L=20", data).settings  # D and L each change two places that must agree
    assert (wider.model.d_model, wider.items.d_model, wider.model.max_len, wider.windows.max_len) == (32, 32, 20, 20)
    with pytest.raises(ValueError, match="unknown variant key 'depth'.*known keys: layers"):
        parse_variant("depth=2", data)
    with pytest.raises(ValueError, match="key=value"):
        parse_variant("layers", data)


def test_capstone_settings_pass_the_fusion_to_the_movielens_encoder():
    settings = capstone_settings(fake_movielens_data(), "notebook", fusion="sum")
    assert isinstance(settings.items, MetadataEncoderConfig) and settings.items.fusion == "sum"
    assert settings.items.d_model == settings.model.d_model == 64
    with pytest.raises(ValueError, match="modalities is for ShopWorld"):
        capstone_settings(fake_movielens_data(), "notebook", modalities=("id",))


@pytest.mark.parametrize("positions", ["oldest", "newest"])
def test_as_sasrec_shares_the_modules_and_with_k0_scores_like_the_capstone(positions):
    config = dataclasses.replace(CONFIG, num_interests=0, positions=positions)
    model = make_model(12, config=config)
    view = model.as_sasrec()
    assert view.encoder is model.encoder and view.item_encoder is model.item_encoder, "shared, not copied"
    assert not view.training and view.config.positions == positions and view.config.time_gaps == config.time_gaps
    history, times = random_case(12, 3, 12, pad_left=4)
    batch = history_batch(history, times)
    with torch.no_grad():
        torch.testing.assert_close(view.score_all(batch), model.score_all(batch))
        torch.testing.assert_close(view(history, times), model(history, times))


def streamable(seed: int, num_interests: int = 0) -> CapstoneRecommender:
    """A capstone that notebook 14's cache accepts: oldest-anchored positions, no time gaps."""
    config = dataclasses.replace(CONFIG, num_interests=num_interests, positions="oldest", time_gaps=None)
    torch.manual_seed(seed)
    return CapstoneRecommender(config, item_encoder("metadata", seed, config.d_model)).eval()


@pytest.mark.parametrize("seed", [0, 1])
def test_an_oldest_anchored_capstone_streams_equal_to_recomputation(seed):
    from course_lib.models.sasrec_streaming import empty_cache, extend, step

    model = streamable(seed)
    history, times = random_case(seed, 3, 12, pad_left=3)
    view = model.as_sasrec()
    with torch.no_grad():
        full = model(history, times)  # (B, L, D) recomputed at once
        hidden, cache = extend(view, history[:, :5], empty_cache(view, 3))  # prefill the first 5 slots
        streamed = [hidden]
        for slot in range(5, 12):  # then one event at a time
            state, cache = step(view, history[:, slot], cache)
            streamed.append(state[:, None])
        streamed = torch.cat(streamed, dim=1)
        torch.testing.assert_close(streamed[history != PAD_ID], full[history != PAD_ID], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(view.item_scores(streamed[:, -1]), model.score_all(history_batch(history, times)),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("change", [{"positions": "newest"}, {"time_gaps": TimeBucketConfig()}])
def test_the_cache_refuses_a_capstone_it_would_get_wrong(change):
    from course_lib.models.sasrec_streaming import empty_cache

    model = CapstoneRecommender(dataclasses.replace(streamable(0).config, **change), item_encoder("metadata", 0, 16))
    with pytest.raises(TypeError, match="oldest|time-gap"):
        empty_cache(model.as_sasrec(), 2)


@pytest.mark.parametrize("world", [False, True])
def test_capstone_settings_variants_change_only_what_they_name(world):
    data = fake_shopworld_data() if world else fake_movielens_data()
    base = capstone_settings(data, "notebook")
    assert (base.model.num_interests, base.model.time_gaps, base.model.positions) == (0, None, "oldest")
    for changes, expected in [({"num_interests": 2}, {"num_interests": 2}), ({"time_gaps": True}, {"time_gaps": TimeBucketConfig()}),
                              ({"positions": "newest"}, {"positions": "newest"})]:
        variant = capstone_settings(data, "notebook", **changes)
        assert variant.model == dataclasses.replace(base.model, **expected)
        assert (variant.items, variant.train, variant.windows) == (base.items, base.train, base.windows)
    longer = capstone_settings(data, "notebook", epochs=12)
    assert (longer.train.epochs, longer.train.patience) == (12, 12) and longer.model == base.model
    assert dataclasses.replace(longer.train, epochs=base.train.epochs, patience=base.train.patience) == base.train


def fake_shopworld_data(items: int = I):
    """What capstone_settings reads of a BenchData for ShopWorld (no generation)."""
    world = types.SimpleNamespace(vocabulary=list(range(9)), config=types.SimpleNamespace(image_size=24))
    return types.SimpleNamespace(name="shopworld", world=world, movielens=None, split=types.SimpleNamespace(num_items=items))
