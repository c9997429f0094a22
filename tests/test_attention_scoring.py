"""Score functions and additive attention against hand computations and loops."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import AdditiveAttention, additive_scores, cosine_scores, dot_product_scores


def test_dot_product_scores_by_hand():
    users = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    items = torch.tensor([[2.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    expected = torch.tensor([[4.0, 2.0, 3.0], [6.0, 0.0, 3.0]])
    torch.testing.assert_close(dot_product_scores(users, items), expected)
    torch.testing.assert_close(dot_product_scores(users, items, scale=None), expected / math.sqrt(2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cosine_scores_match_torch(seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 3, 5, generator=gen), torch.randn(2, 4, 5, generator=gen)
    expected = F.cosine_similarity(q[:, :, None, :], k[:, None, :, :], dim=-1)
    torch.testing.assert_close(cosine_scores(q, k), expected)


def test_cosine_ignores_length_dot_does_not():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [10.0, 10.0]])
    assert dot_product_scores(q, k).argmax() == 1  # the long vector wins the dot product
    assert cosine_scores(q, k).argmax() == 0  # but not the cosine


@pytest.mark.parametrize("seed", [0, 1])
def test_additive_scores_match_a_loop(seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 5, 6, generator=gen)
    w_q, w_k, w_v = torch.randn(4, 7, generator=gen), torch.randn(6, 7, generator=gen), torch.randn(7, generator=gen)
    scores = additive_scores(q, k, w_q, w_k, w_v)
    assert scores.shape == (2, 3, 5)
    for b in range(2):
        for i in range(3):
            for j in range(5):
                expected = torch.dot(w_v, torch.tanh(q[b, i] @ w_q + k[b, j] @ w_k))
                torch.testing.assert_close(scores[b, i, j], expected)


def test_additive_scores_shape_errors():
    q, k = torch.randn(3, 4), torch.randn(5, 6)
    with pytest.raises(ValueError, match="w_q"):
        additive_scores(q, k, torch.randn(5, 7), torch.randn(6, 7), torch.randn(7))
    with pytest.raises(ValueError, match="w_k"):
        additive_scores(q, k, torch.randn(4, 7), torch.randn(6, 8), torch.randn(7))
    with pytest.raises(ValueError, match="w_v"):
        additive_scores(q, k, torch.randn(4, 7), torch.randn(6, 7), torch.randn(8))


def test_additive_attention_module_wraps_the_function():
    torch.manual_seed(0)
    module = AdditiveAttention(query_dim=4, key_dim=6, hidden_dim=8)
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 6), torch.randn(2, 5, 2)
    mask = torch.ones(2, 3, 5, dtype=torch.bool)
    mask[1, 2] = False
    out, weights = module(query=q, key=k, value=v, attn_mask=mask, return_attention=True)
    scores = additive_scores(q, k, module.w_q, module.w_k, module.w_v)
    expected = torch.softmax(scores, -1)
    torch.testing.assert_close(weights[0], expected[0])
    assert (weights[1, 2] == 0).all() and (out[1, 2] == 0).all()
    torch.testing.assert_close(module(query=q, key=k, value=v), torch.softmax(scores, -1) @ v)
    assert {name for name, _ in module.named_parameters()} == {"w_q", "w_k", "w_v"}
