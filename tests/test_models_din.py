"""DIN-style target attention and its mean-pooling twin behind the shared interface."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from factories import history_batch, random_split

from course_lib import PAD_ID
from course_lib.attention import causal_mask, masked_softmax, padding_mask
from course_lib.data import Batch, evaluation_batches, training_windows
from course_lib.metrics import evaluate
from course_lib.models.base import Recommender
from course_lib.models.din import DIN, DINConfig


def make_model(
    seed: int, *, items: int = 30, d_model: int = 8, n_heads: int = 1, pooling: str = "attention", recency: bool = False,
    score_chunk: int = 512, weights: str = "softmax",
) -> DIN:
    torch.manual_seed(seed)
    config = DINConfig(items, d_model=d_model, n_heads=n_heads, pooling=pooling, num_negatives=5, dropout=0.0, recency=recency,
                       max_len=12, score_chunk=score_chunk, weights=weights)
    model = DIN(config)
    with torch.no_grad():  # larger, random weights everywhere, so that every term matters
        model.item_embedding.weight[1:].normal_()
        model.item_bias.normal_()
        model.attention_layer.out_proj.bias.normal_()
        if recency:
            model.recency.embedding.weight.normal_()
        if model.pool_query is not None:
            model.pool_query.normal_()
    return model.eval()


def make_batch(seed: int, *, size: int = 4, length: int = 7, items: int = 30) -> Batch:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, items + 1, (size, length), generator=g)
    history[0, :3] = PAD_ID  # a short, left-padded history
    history[1, : length - 1] = PAD_ID  # a single item
    return history_batch(history)


def small_split(seed=0):
    return random_split(seed, users=30, items=25, events=(5, 15))


def reference_scores(model: DIN, batch: Batch, items: torch.Tensor) -> torch.Tensor:
    """The definition, with the library's MultiHeadAttention as cross-attention (candidates = queries)."""
    embed = model.item_embedding
    if model.config.pooling == "attention":
        users = model.attention_layer(query=embed(items), key=embed(batch.history), attn_mask=padding_mask(batch.history))
    else:  # the mean of the real history items, through the same value/output projections
        real = (batch.history != PAD_ID).float()  # (B, L)
        mean = (embed(batch.history) * real[..., None]).sum(1) / real.sum(1, keepdim=True).clamp_min(1)
        pooled = model.attention_layer.v_proj(mean) * (real.sum(1, keepdim=True) > 0)
        users = model.attention_layer.out_proj(pooled)[:, None].expand(-1, items.shape[1], -1)
    return (users * embed(items)).sum(-1) + model.item_bias[items]  # (B, N)


@pytest.mark.parametrize("pooling", ["attention", "mean"])
@pytest.mark.parametrize("seed,n_heads", [(0, 1), (1, 2), (2, 4)])
def test_scores_match_the_definition_with_multi_head_attention(seed, n_heads, pooling):
    model = make_model(seed, n_heads=n_heads, pooling=pooling)
    batch = make_batch(seed)
    items = torch.randint(1, 31, (len(batch), 6), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        scores, maps = model.score(batch, items), model.attention(batch, items)
        weights = maps.target
        torch.testing.assert_close(scores, reference_scores(model, batch, items))
        torch.testing.assert_close(maps.history, weights.mean(1))  # the explanation: heads averaged
        if pooling == "attention":
            _, expected = model.attention_layer(
                query=model.item_embedding(items), key=model.item_embedding(batch.history),
                attn_mask=padding_mask(batch.history), return_attention=True,
            )
            torch.testing.assert_close(weights, expected)
    assert scores.shape == (len(batch), 6)
    assert weights.shape == (len(batch), n_heads, 6, batch.history.shape[1])


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_weights_sum_to_one_over_real_items_and_zero_on_padding(pooling):
    model = make_model(3, n_heads=2, pooling=pooling)
    batch = make_batch(3)
    items = torch.randint(1, 31, (len(batch), 5))
    with torch.no_grad():
        weights = model.attention(batch, items).target  # (B, H, N, L)
    pad = batch.history == PAD_ID
    assert torch.all(weights.permute(0, 3, 1, 2)[pad] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))
    if pooling == "mean":  # uniform, the same for every candidate: one fixed user vector
        real = (~pad).sum(1).float()
        torch.testing.assert_close(weights, (~pad).float()[:, None, None, :].expand_as(weights) / real[:, None, None, None])
    else:  # target attention: different candidates, different weights
        assert not torch.allclose(weights[2, :, 0], weights[2, :, 1])


def test_mean_pooling_gives_one_user_vector_for_every_candidate():
    model = make_model(4, pooling="mean")
    batch = make_batch(4)
    items = torch.arange(1, 31).expand(len(batch), -1)
    with torch.no_grad():
        scores = model.score(batch, items)
        user = reference_scores(model, batch, items) - model.item_bias[items]  # u . e_c with a fixed u
        embeddings = model.item_embedding(items[0])  # (I, D)
        fixed_user = torch.linalg.lstsq(embeddings, user.T).solution.T  # (B, D) solves e_c . u = score
    torch.testing.assert_close(fixed_user @ embeddings.T + model.item_bias[items], scores, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("recency", [False, True])
@pytest.mark.parametrize("pooling", ["attention", "mean"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_folded_speed_path_of_score_all_equals_the_plain_score(seed, pooling, recency):
    """score is the definition (MultiHeadAttention); score_all folds W_O into the values and uses torch's fused kernel."""
    model = make_model(seed, n_heads=2, pooling=pooling, recency=recency, score_chunk=7)
    batch = make_batch(seed)
    items = torch.arange(1, 31).expand(len(batch), -1)
    with torch.no_grad():
        all_scores = model.score_all(batch)  # chunks of 7 candidates through the fused kernel
        torch.testing.assert_close(all_scores, model.score(batch, items))
    assert all_scores.shape == (len(batch), 30)


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_padding_invariance(pooling):
    model = make_model(5, n_heads=2, pooling=pooling)
    batch = make_batch(5)
    padded = torch.cat([torch.full((len(batch), 4), PAD_ID), batch.history], dim=1)  # 4 more padding slots
    longer = history_batch(padded)
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(longer), model.score_all(batch))


def test_history_order_does_not_matter():
    """DIN has no positions: attention pooling is a weighted sum, so any order of the history gives the same score."""
    model = make_model(6, n_heads=2)
    batch = make_batch(6)
    flipped = history_batch(batch.history.flip(1))
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(flipped), model.score_all(batch))


@pytest.mark.parametrize("pooling", ["attention", "mean"])
@pytest.mark.parametrize("seed", [0, 1])
def test_prefix_logits_equal_scores_of_each_prefix(seed, pooling):
    """The cumulative-sum speed path of training equals the plain score of every prefix on its own."""
    model = make_model(seed, n_heads=2, pooling=pooling)
    batch = make_batch(seed)
    items = torch.randint(1, 31, (len(batch), 5))
    with torch.no_grad():
        prefix = model.prefix_logits(batch.history, items)  # (B, N, L)
        for end in range(batch.history.shape[1]):
            torch.testing.assert_close(prefix[..., end], model.score(history_batch(batch.history[:, : end + 1]), items))


@pytest.mark.parametrize("pooling", ["attention", "mean"])
@pytest.mark.parametrize("seed", [0, 1])
def test_prefix_weights_are_the_target_attention_of_each_prefix(seed, pooling):
    """Row l of prefix_weights: candidate l's weights over history positions <= l (what training reads)."""
    model = make_model(seed, n_heads=2, pooling=pooling)
    batch = make_batch(seed)
    length = batch.history.shape[1]
    candidates = torch.randint(1, 31, batch.history.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        weights = model.prefix_weights(batch.history, candidates)  # (B, H, L, L)
        for end in range(length):
            _, expected = model.target_attention(batch.history[:, : end + 1], candidates[:, end : end + 1])  # (B, H, 1, end + 1)
            torch.testing.assert_close(weights[:, :, end, : end + 1], expected[:, :, 0])
            assert torch.all(weights[:, :, end, end + 1 :] == 0), "nothing after the prefix"
        visible = padding_mask(batch.history) & causal_mask(length)
        by_hand = masked_softmax(model.target_scores(batch.history, candidates), visible)
    torch.testing.assert_close(weights, by_hand)


def test_prefix_logits_are_causal():
    model = make_model(7, n_heads=2)
    batch = make_batch(7)
    items = torch.randint(1, 31, (len(batch), 5))
    changed = batch.history.clone()
    changed[:, 5:] = torch.randint(1, 31, changed[:, 5:].shape)
    with torch.no_grad():
        before = model.prefix_logits(batch.history, items)
        after = model.prefix_logits(changed, items)
    torch.testing.assert_close(after[..., :5], before[..., :5])
    assert not torch.allclose(after[..., 5:], before[..., 5:])


def test_loss_is_balanced_binary_cross_entropy_over_positives_and_sampled_negatives():
    model = make_model(8, n_heads=2)
    batch = make_batch(8)
    targets = torch.randint(1, 31, (len(batch),))
    one_target = history_batch(batch.history, targets=targets)
    with torch.no_grad():
        loss = model.loss(one_target, generator=torch.Generator().manual_seed(0))
        negatives = model.sample_negatives((len(batch), model.config.num_negatives), torch.Generator().manual_seed(0))
        pos = model.score(one_target, targets[:, None])[:, 0]
        neg = model.score(one_target, negatives)
        keep = negatives != targets[:, None]
        expected = -torch.nn.functional.logsigmoid(pos).mean() - torch.nn.functional.logsigmoid(-neg[keep]).mean()
    torch.testing.assert_close(loss, expected)


def test_loss_is_repeatable_with_a_generator_and_learns():
    split = small_split()
    windows = training_windows(split, max_len=8)
    torch.manual_seed(0)
    model = DIN(DINConfig(split.num_items, d_model=16, num_negatives=8, dropout=0.0))
    batch = next(windows.batches(64, torch.Generator().manual_seed(0)))
    a = model.loss(batch, generator=torch.Generator().manual_seed(1))
    b = model.loss(batch, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(2)
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.loss(batch, generator=g)
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    assert model.loss(batch, generator=torch.Generator().manual_seed(1)).item() < a.item() - 0.2


def test_training_reads_only_training_events():
    """Leakage: the positives DIN trains on are exactly the training events, never a validation/test item."""
    split = small_split(1)
    windows = training_windows(split, max_len=6, stride=3)
    for user in range(split.num_users):
        rows = windows.users == user
        seen = set(windows.history[rows].flatten().tolist()) | set(windows.seq_targets[rows].flatten().tolist())
        seen.discard(PAD_ID)
        assert seen <= set(split.train_sequence(user).tolist())
        if split.evaluable[user]:
            assert not seen & set(split.sequences[user][-2:].tolist())


def test_empty_history_gives_finite_scores_and_errors_name_shapes():
    model = make_model(9)
    history = torch.zeros(2, 5, dtype=torch.long)  # no items at all
    batch = history_batch(history)
    candidates = torch.tensor([[1, 2], [3, 4]])
    scores, weights = model.score(batch, candidates), model.attention(batch, candidates).target
    assert torch.isfinite(scores).all() and torch.all(weights == 0)
    torch.testing.assert_close(model.score_all(batch).gather(1, candidates - 1), scores)
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        model.score(batch, torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="pooling"):
        DIN(DINConfig(5, pooling="max"))
    with pytest.raises(ValueError, match="depends on the candidate"):
        model.attention(batch)


def test_evaluation_runs_through_the_shared_path():
    split = small_split(2)
    model = DIN(DINConfig(split.num_items, d_model=8))
    assert isinstance(model, Recommender)
    assert not any(isinstance(v, torch.device) for v in vars(model).values())
    ev = evaluate(model, evaluation_batches(split, "test", max_len=10), device="cpu")
    assert ev.ranks.min() >= 1 and ev.ranks.max() <= split.num_items


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_din_on_cuda_matches_cpu():
    model = make_model(0, n_heads=2)
    batch = make_batch(0)
    with torch.no_grad():
        cpu = model.score_all(batch)
        gpu = model.to("cuda").score_all(batch.to("cuda")).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)


def test_recency_keys_make_order_matter_but_keep_padding_invariance():
    torch.manual_seed(10)
    model = DIN(DINConfig(30, d_model=8, n_heads=2, dropout=0.0, recency=True, max_len=12)).eval()
    with torch.no_grad():
        model.recency.embedding.weight.normal_()
    batch = make_batch(10)
    flipped = history_batch(torch.stack([torch.cat([h[h == PAD_ID], h[h != PAD_ID].flip(0)]) for h in batch.history]))
    longer = history_batch(torch.cat([torch.full((len(batch), 4), PAD_ID), batch.history], dim=1))
    items = torch.randint(1, 31, (len(batch), 5))
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(longer), model.score_all(batch))
        assert not torch.allclose(model.score_all(flipped)[3], model.score_all(batch)[3])
        prefix = model.prefix_logits(batch.history, items)
        torch.testing.assert_close(prefix[..., -1], model.score(batch, items))
        weights = model.attention(batch, items).target
    assert weights.shape == (len(batch), 2, 5, batch.history.shape[1])


def _recency_model(seed: int) -> DIN:
    torch.manual_seed(seed)
    model = DIN(DINConfig(30, d_model=8, n_heads=2, dropout=0.0, recency=True, max_len=12)).eval()
    with torch.no_grad():
        model.recency.embedding.weight.normal_()  # distinct distances, as after training
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_recency_training_reads_each_prefix_as_inference_will(seed):
    """Training scores prefix l with its newest item at distance 0, exactly what score() does at inference.

    The old path kept the window's slots (slot l was L-1-l steps back for every prefix), so in 49 of
    50 training prefixes the newest item carried the wrong distance.
    """
    model, batch = _recency_model(seed), make_batch(seed)
    items = torch.randint(1, 31, (len(batch), 5), generator=torch.Generator().manual_seed(seed))
    candidates = torch.randint(1, 31, batch.history.shape, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        prefix = model.prefix_logits(batch.history, items)  # (B, N, L)
        weights = model.prefix_weights(batch.history, candidates)  # (B, H, L, L)
        for end in range(batch.history.shape[1]):
            alone = history_batch(batch.history[:, : end + 1])  # the prefix as a whole, right-aligned history
            torch.testing.assert_close(prefix[..., end], model.score(alone, items))
            _, expected = model.target_attention(alone.history, candidates[:, end : end + 1])  # (B, H, 1, end + 1)
            torch.testing.assert_close(weights[:, :, end, : end + 1], expected[:, :, 0])
            assert torch.all(weights[:, :, end, end + 1 :] == 0)



@pytest.mark.parametrize("options", [dict(recency=False), dict(recency=True), dict(pooling="mean", recency=True),
                                     dict(weights="unnormalised")])
def test_softmax_objective_is_the_cross_entropy_of_every_prefix_over_the_catalogue(options):
    """DINConfig(objective="softmax"): each prefix's next item against all I items, from the plain score of that prefix."""
    torch.manual_seed(11)
    model = DIN(DINConfig(30, d_model=8, n_heads=2, dropout=0.0, max_len=12, objective="softmax", **options)).eval()
    batch = make_batch(11)
    targets = torch.randint(1, 31, batch.history.shape, generator=torch.Generator().manual_seed(12))
    seq_targets = torch.where(batch.history != PAD_ID, targets, PAD_ID)
    window = dataclasses.replace(batch, seq_targets=seq_targets)
    items = torch.arange(1, 31).expand(len(batch), -1)  # (B, I)
    losses = []
    with torch.no_grad():
        for end in range(batch.history.shape[1]):
            logits = model.score(history_batch(batch.history[:, : end + 1]), items)  # (B, I)
            keep = seq_targets[:, end] != PAD_ID
            losses.append(F.cross_entropy(logits[keep], seq_targets[keep, end] - 1, reduction="none"))
        expected = torch.cat(losses).mean()
        torch.testing.assert_close(model.loss(window), expected)


def test_unknown_objective_is_named():
    with pytest.raises(ValueError, match="objective must be 'bce' or 'softmax'"):
        DINConfig(30, objective="hinge")


# ---------------------------------------------------------------- the paper's unnormalised weights


@pytest.mark.parametrize("seed,n_heads", [(0, 1), (1, 2)])
def test_unnormalised_weights_are_one_sigmoid_per_item_and_score_by_the_definition(seed, n_heads):
    """weights="unnormalised": w_cl = sigmoid(q_c . k_l / sqrt(Dh)) on real items, 0 on padding, no sum to 1."""
    model = make_model(seed, n_heads=n_heads, weights="unnormalised")
    batch = make_batch(seed)
    items = torch.randint(1, 31, (len(batch), 6), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        weights = model.attention(batch, items).target  # (B, H, N, L)
        real = (batch.history != PAD_ID)[:, None, None, :]
        expected = torch.sigmoid(model.target_scores(batch.history, items)) * real
        torch.testing.assert_close(weights, expected)
        assert not torch.allclose(weights[2].sum(-1), torch.ones(n_heads, 6)), "the weights no longer sum to 1"
        assert torch.all(weights.sum(-1) <= real.sum(-1)) and torch.all(weights.sum(-1) > 0)  # a soft count in (0, L_real]
        mha, embed = model.attention_layer, model.item_embedding
        v = mha.split_heads(mha.v_proj(embed(batch.history)))  # (B, H, L, Dh)
        users = mha.out_proj((weights @ v).transpose(1, 2).flatten(2))  # (B, N, D): W_O sum_l w_cl v_l
        by_hand = (users * embed(items)).sum(-1) + model.item_bias[items]
        torch.testing.assert_close(model.score(batch, items), by_hand)


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_unnormalised_speed_paths_equal_the_plain_score(pooling):
    model = make_model(2, n_heads=2, pooling=pooling, weights="unnormalised", score_chunk=7)
    batch = make_batch(2)
    everything = torch.arange(1, 31).expand(len(batch), -1)
    items = torch.randint(1, 31, (len(batch), 5), generator=torch.Generator().manual_seed(2))
    candidates = torch.randint(1, 31, batch.history.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(batch), model.score(batch, everything))
        prefix = model.prefix_logits(batch.history, items)  # (B, N, L)
        weights = model.prefix_weights(batch.history, candidates)  # (B, H, L, L)
        for end in range(batch.history.shape[1]):
            cut = history_batch(batch.history[:, : end + 1])
            torch.testing.assert_close(prefix[..., end], model.score(cut, items))
            _, expected = model.target_attention(cut.history, candidates[:, end : end + 1])
            torch.testing.assert_close(weights[:, :, end, : end + 1], expected[:, :, 0])
            assert torch.all(weights[:, :, end, end + 1 :] == 0)


def test_unnormalised_mean_pooling_is_half_the_sum_of_the_history():
    """With equal (zero) scores every sigmoid weight is 1/2: sum pooling, one vector for every candidate."""
    model = make_model(4, pooling="mean", weights="unnormalised")
    batch = make_batch(4)
    items = torch.randint(1, 31, (len(batch), 5))
    with torch.no_grad():
        weights = model.attention(batch, items).target
    torch.testing.assert_close(weights, 0.5 * (batch.history != PAD_ID).float()[:, None, None, :].expand_as(weights))


def test_unnormalised_weights_with_recency_are_refused_and_unknown_weights_named():
    with pytest.raises(ValueError, match="recency"):
        DINConfig(30, weights="unnormalised", recency=True)
    with pytest.raises(ValueError, match="weights must be 'softmax' or 'unnormalised'"):
        DINConfig(30, weights="sparsemax")


def test_the_sum_of_unnormalised_weights_grows_with_matching_history_items():
    """The paper's argument: without the softmax, a history with more items like the candidate gives a larger sum."""
    model = make_model(5, weights="unnormalised")
    with torch.no_grad():
        model.attention_layer.q_proj.weight.copy_(torch.eye(8))
        model.attention_layer.k_proj.weight.copy_(torch.eye(8))
        model.attention_layer.q_proj.bias.zero_()
        model.attention_layer.k_proj.bias.zero_()
        model.item_embedding.weight[7] = 3 * model.item_embedding.weight[7] / model.item_embedding.weight[7].norm()
        model.item_embedding.weight[1] = model.item_embedding.weight[7]  # item 1 looks exactly like the candidate
    few = history_batch(torch.tensor([[3, 4, 5, 1]]))
    many = history_batch(torch.tensor([[1, 1, 5, 1]]))
    softmax_model = make_model(5)
    softmax_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        sum_few = model.attention(few, torch.tensor([[7]])).target.sum()
        sum_many = model.attention(many, torch.tensor([[7]])).target.sum()
        assert sum_many > sum_few + 1.0  # two more matching items: about two more in the soft count
        for batch in (few, many):  # the softmax hides it: every history's weights sum to 1
            torch.testing.assert_close(softmax_model.attention(batch, torch.tensor([[7]])).target.sum(), torch.tensor(1.0))


# ---------------------------------------------------------------- the mean twin of DIN+recency


def test_mean_twin_with_recency_gives_every_candidate_the_same_recency_weights():
    """pooling="mean", recency=True: weights depend on steps back only (one vector per user), order matters."""
    model = make_model(6, n_heads=2, pooling="mean", recency=True, score_chunk=7)
    batch = make_batch(6)
    items = torch.randint(1, 31, (len(batch), 5), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        weights = model.attention(batch, items).target  # (B, H, N, L)
        torch.testing.assert_close(weights, weights[:, :, :1].expand_as(weights))  # the same for every candidate
        torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))
        assert not torch.allclose(weights[3, 0, 0], torch.full_like(weights[3, 0, 0], 1 / 7))  # not uniform
        same_items = history_batch(batch.history.clone())
        same_items.history[3] = batch.history[2]  # two users with one history: equal weights (content plays no part)
        w = model.attention(same_items, items).target
        torch.testing.assert_close(w[3], w[2])
        other_content = history_batch(torch.where(batch.history != PAD_ID, (batch.history % 30) + 1, PAD_ID))
        torch.testing.assert_close(model.attention(other_content, items).target, weights)  # only positions matter
        torch.testing.assert_close(model.score_all(batch), model.score(batch, torch.arange(1, 31).expand(len(batch), -1)))
        flipped = history_batch(torch.stack([torch.cat([h[h == PAD_ID], h[h != PAD_ID].flip(0)]) for h in batch.history]))
        assert not torch.allclose(model.score_all(flipped)[3], model.score_all(batch)[3])
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in make_model(6, n_heads=2, recency=True).parameters()) + 8


@pytest.mark.parametrize("seed", [0, 1])
def test_mean_twin_with_recency_trains_on_each_prefix_as_inference_reads_it(seed):
    model, batch = make_model(seed, n_heads=2, pooling="mean", recency=True), make_batch(seed)
    items = torch.randint(1, 31, (len(batch), 5), generator=torch.Generator().manual_seed(seed))
    candidates = torch.randint(1, 31, batch.history.shape, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        prefix = model.prefix_logits(batch.history, items)
        weights = model.prefix_weights(batch.history, candidates)
        for end in range(batch.history.shape[1]):
            alone = history_batch(batch.history[:, : end + 1])
            torch.testing.assert_close(prefix[..., end], model.score(alone, items))
            _, expected = model.target_attention(alone.history, candidates[:, end : end + 1])
            torch.testing.assert_close(weights[:, :, end, : end + 1], expected[:, :, 0])


@pytest.mark.parametrize("options", [dict(), dict(recency=True), dict(pooling="mean", recency=True), dict(weights="unnormalised")])
def test_shared_candidates_give_the_same_prefix_logits_as_per_user_candidates(options):
    """prefix_logits with (N,) ids shared by every user (the softmax objective's catalogue) = the same ids per user."""
    model, batch = make_model(7, n_heads=2, **options), make_batch(7)
    items = torch.randint(1, 31, (6,), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        shared = model.prefix_logits(batch.history, items)  # (B, N, L)
        torch.testing.assert_close(shared, model.prefix_logits(batch.history, items.expand(len(batch), -1)))
