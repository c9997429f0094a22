"""Multi-interest pooling: shapes, masks (weights sum to 1 on real items, 0 on padding), causality, interface."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from factories import history_batch

from course_lib import PAD_ID
from course_lib.layers import prefix_attention_pool
from course_lib.models.multi_interest import MultiInterest, MultiInterestConfig, assign_events

I = 25  # catalogue size of the toy tests


def make_model(seed: int, k: int = 3, d: int = 8) -> MultiInterest:
    torch.manual_seed(seed)
    return MultiInterest(MultiInterestConfig(I, num_interests=k, d_model=d, d_attention=6, dropout=0.1, init_std=0.5)).eval()


def random_history(seed: int, batch: int, length: int) -> torch.Tensor:
    """Histories with a different amount of left padding per row (row 0 none, the last row empty)."""
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, I + 1, (batch, length), generator=g)
    for row in range(batch):
        history[row, : min(length, row * 2)] = PAD_ID
    history[-1] = PAD_ID
    return history


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(4, 7, 3, 8), (5, 11, 1, 4), (2, 3, 5, 6)])
def test_shapes_and_weights_sum_to_one_over_real_items(seed, shape):
    batch, length, k, d = shape
    model = make_model(seed, k=k, d=d)
    history = random_history(seed, batch, length)
    with torch.no_grad():
        interests, weights = model.pool(history)
    assert interests.shape == (batch, k, d) and weights.shape == (batch, k, length)
    torch.testing.assert_close(model.attention(history_batch(history)).interests, weights)
    torch.testing.assert_close(model(history), interests)
    real = history != PAD_ID  # (B, L)
    assert torch.equal(weights * ~real[:, None, :], torch.zeros_like(weights)), "padding gets zero weight"
    sums = weights.sum(-1)  # (B, K)
    has_items = real.any(-1)
    torch.testing.assert_close(sums[has_items], torch.ones_like(sums[has_items]))
    torch.testing.assert_close(sums[~has_items], torch.zeros_like(sums[~has_items]))  # empty history: zeros, not NaN
    assert torch.isfinite(interests).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_hand_written_reference(seed):
    model = make_model(seed)
    history = random_history(seed, 3, 6)[:2]
    with torch.no_grad():
        interests, weights = model.pool(history)
        for b in range(2):
            items = history[b][history[b] != PAD_ID]
            e = model.item_embedding.weight[items]  # (n, D)
            scores = torch.tanh(e @ model.key_proj.weight.T + model.key_proj.bias) @ model.queries.weight.T  # (n, K)
            a = torch.softmax(scores.T, dim=-1)  # (K, n)
            torch.testing.assert_close(weights[b][:, history[b] != PAD_ID], a)
            torch.testing.assert_close(interests[b], a @ e)


@pytest.mark.parametrize("seed", [0, 1])
def test_padding_and_order_do_not_change_the_interests(seed):
    model = make_model(seed)
    history = torch.randint(1, I + 1, (2, 6), generator=torch.Generator().manual_seed(seed))
    padded = torch.cat([torch.full((2, 4), PAD_ID), history], dim=1)
    right_padded = torch.cat([history, torch.full((2, 4), PAD_ID)], dim=1)
    shuffled = history[:, torch.randperm(6, generator=torch.Generator().manual_seed(seed + 10))]
    with torch.no_grad():
        base = model(history)
        for other in (padded, right_padded, shuffled):
            torch.testing.assert_close(model(other), base)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_interests_are_causal_and_end_with_the_whole_history(seed):
    model = make_model(seed)
    history = random_history(seed, 4, 8)
    with torch.no_grad():
        prefix = model.prefix_interests(history)  # (B, L, K, D)
        torch.testing.assert_close(prefix[:, -1], model(history))
        for cut in (2, 5):
            torch.testing.assert_close(prefix[:, cut], model(history[:, : cut + 1]))
            changed = history.clone()
            changed[:, cut] = changed[:, cut] % I + 1
            after = model.prefix_interests(changed)
            torch.testing.assert_close(after[:, :cut], prefix[:, :cut])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_attention_pool_equals_a_loop_over_prefixes(seed):
    g = torch.Generator().manual_seed(seed)
    scores, values = torch.randn(3, 4, 7, generator=g), torch.randn(3, 7, 5, generator=g)  # (B, K, L), (B, L, D)
    real = torch.rand(3, 7, generator=g) > 0.3
    real[0] = False  # an empty sequence pools to zeros
    pooled, weights = prefix_attention_pool(scores, values, real)
    for b in range(3):
        for end in range(7):
            keep = real[b, : end + 1]
            expected = torch.zeros(4, 5)
            if keep.any():
                a = torch.softmax(scores[b, :, : end + 1][:, keep], dim=-1)  # (K, n) over the real positions <= end
                expected = a @ values[b, : end + 1][keep]
                torch.testing.assert_close(weights[b, end][:, : end + 1][:, keep], a)
            torch.testing.assert_close(pooled[b, end], expected)
            assert torch.all(weights[b, end, :, end + 1 :] == 0)
    with pytest.raises(ValueError, match="same B and L"):
        prefix_attention_pool(scores, values[:, :5], real)


def test_score_is_the_best_interest_and_loss_is_cross_entropy():
    model = make_model(5)
    history = random_history(5, 3, 6)[:2]
    targets = torch.tensor([3, 17])
    batch = history_batch(history, targets=targets)
    with torch.no_grad():
        interests = model(history)  # (B, K, D)
        per_interest = interests @ model.item_embedding.weight[1:].T  # (B, K, I)
        expected = per_interest.max(dim=1).values
        torch.testing.assert_close(model.score_all(batch), expected)
        candidates = torch.tensor([[1, 2, 3], [25, 4, 17]])
        torch.testing.assert_close(model.score(batch, candidates), expected.gather(1, candidates - 1))
        torch.testing.assert_close(model.loss(batch), F.cross_entropy(expected, targets - 1))
        seq_targets = torch.roll(history, -1, dims=1)
        seq_targets[:, -1] = targets
        seq_targets[history == PAD_ID] = PAD_ID
        seq_batch = history_batch(history, seq_targets=seq_targets)
        keep = seq_targets != PAD_ID
        logits = model.interest_scores(model.prefix_interests(history))[keep]
        torch.testing.assert_close(model.loss(seq_batch), F.cross_entropy(logits, seq_targets[keep] - 1))


def test_loss_trains_and_gradients_are_finite_with_an_empty_history():
    model = make_model(6).train()
    history = random_history(6, 4, 6)  # the last row is empty
    batch = history_batch(history, targets=torch.tensor([1, 2, 3, 4]))
    loss = model.loss(batch)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_assign_events():
    weights = torch.tensor([[[0.0, 0.7, 0.1, 0.5], [0.0, 0.3, 0.9, 0.5]]])  # (1, K=2, L=4)
    history = torch.tensor([[PAD_ID, 4, 5, 6]])
    assert torch.equal(assign_events(weights, history), torch.tensor([[-1, 0, 1, 0]]))  # ties go to the first


def test_errors():
    model = make_model(0)
    with pytest.raises(ValueError, match=r"history must be item ids \(B, L\)"):
        model(torch.ones(5, dtype=torch.long))
    with pytest.raises(ValueError, match="dtype long"):
        model(torch.ones(1, 5))
    with pytest.raises(ValueError, match="num_interests must be a positive int"):
        MultiInterestConfig(I, num_interests=0)
    with pytest.raises(ValueError, match=r"weights must be \(B, K, L\)"):
        assign_events(torch.zeros(1, 2, 3), torch.ones(1, 4, dtype=torch.long))
    history = torch.ones(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="seq_targets"):
        model.loss(history_batch(history))
