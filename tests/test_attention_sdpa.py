"""scaled_dot_product_attention against torch's, plus the properties the course relies on."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import causal_mask, padding_mask, scaled_dot_product_attention

SHAPES = [  # (leading batch dims, Lq, Lk, D, Dv)
    ((), 3, 5, 4, 4),
    ((2,), 4, 4, 8, 6),
    ((2, 3), 5, 7, 16, 8),
    ((2, 2, 2), 1, 6, 4, 3),
]


def _inputs(seed, lead, lq, lk, d, dv, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, lq, d, generator=gen, dtype=dtype)
    k = torch.randn(*lead, lk, d, generator=gen, dtype=dtype)
    v = torch.randn(*lead, lk, dv, generator=gen, dtype=dtype)
    return q, k, v, gen


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_without_mask(seed, shape):
    q, k, v, _ = _inputs(seed, *shape)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=q.dtype))
    torch.testing.assert_close(out, weights @ v)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_with_boolean_mask(seed, shape):
    q, k, v, gen = _inputs(seed, *shape)
    lead, lq, lk = shape[0], shape[1], shape[2]
    mask = torch.rand(*lead, lq, lk, generator=gen) > 0.4
    mask[..., 0] = True  # every row keeps a key: torch is defined there
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert (weights[~mask] == 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_broadcast_masks_and_custom_scale(seed):
    q, k, v, gen = _inputs(seed, (2, 3), 4, 6, 8, 5)
    key_mask = torch.rand(2, 1, 1, 6, generator=gen) > 0.3
    key_mask[..., 0] = True
    for mask in (key_mask, causal_mask(4, 6)):
        out, _ = scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.5)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.5))


def test_hand_computed_example():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, weights = scaled_dot_product_attention(q, k, v)
    # scores = [1, 0] / sqrt(2); weights = softmax
    a = math.exp(1 / math.sqrt(2))
    expected_w = torch.tensor([[a / (a + 1), 1 / (a + 1)]])
    torch.testing.assert_close(weights, expected_w)
    torch.testing.assert_close(out, expected_w @ v)


def test_fully_masked_rows_give_zeros_and_finite_gradients():
    q, k, v, _ = _inputs(0, (2,), 3, 4, 5, 6)
    q.requires_grad_(True), k.requires_grad_(True), v.requires_grad_(True)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[0, 1] = False  # query 1 of example 0 may attend to nothing
    mask[1] = False  # example 1 may attend to nothing at all
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert (weights[0, 1] == 0).all() and (out[0, 1] == 0).all()
    assert (weights[1] == 0).all() and (out[1] == 0).all()
    torch.testing.assert_close(weights[0, [0, 2]].sum(-1), torch.ones(2, dtype=q.dtype))
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert (k.grad[1] == 0).all()  # nothing attended, nothing learned


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fully_masked_rows_in_low_precision(dtype):
    q, k, v, _ = _inputs(3, (1,), 2, 3, 4, 4, dtype=dtype)
    mask = torch.tensor([[[True, False, True], [False, False, False]]])
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.isfinite(out).all()
    assert (out[0, 1] == 0).all() and (weights[0, 1] == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_causality_later_keys_do_not_change_earlier_outputs(seed):
    q, k, v, gen = _inputs(seed, (2, 2), 6, 6, 8, 8)
    mask = causal_mask(6)
    out, _ = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    k2, v2 = k.clone(), v.clone()
    k2[..., 4:, :] = torch.randn(2, 2, 2, 8, generator=gen, dtype=k.dtype) * 10
    v2[..., 4:, :] = torch.randn(2, 2, 2, 8, generator=gen, dtype=v.dtype) * 10
    out2, _ = scaled_dot_product_attention(q, k2, v2, attn_mask=mask)
    torch.testing.assert_close(out[..., :4, :], out2[..., :4, :])
    assert not torch.allclose(out[..., 4:, :], out2[..., 4:, :])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padding_invariance(seed):
    """Appending padded keys (with any content) leaves the output unchanged."""
    q, k, v, gen = _inputs(seed, (3,), 4, 5, 8, 6)
    items = torch.randint(1, 100, (3, 5), generator=gen)
    out, _ = scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], attn_mask=padding_mask(items))
    pad = 3
    k_pad = torch.cat([k, torch.randn(3, pad, 8, generator=gen, dtype=k.dtype) * 100], dim=1)
    v_pad = torch.cat([v, torch.randn(3, pad, 6, generator=gen, dtype=v.dtype) * 100], dim=1)
    items_pad = torch.cat([items, torch.zeros(3, pad, dtype=items.dtype)], dim=1)
    out_pad, w_pad = scaled_dot_product_attention(
        q[:, None], k_pad[:, None], v_pad[:, None], attn_mask=padding_mask(items_pad)
    )
    torch.testing.assert_close(out, out_pad)
    assert (w_pad[..., 5:] == 0).all()


def test_large_logits_stay_finite_and_match_torch():
    q = torch.tensor([[[300.0, -200.0], [1e4, 1e4]]])
    k = torch.tensor([[[300.0, 100.0], [-300.0, 50.0], [1e4, -1e4]]])
    v = torch.arange(6.0).reshape(1, 3, 2)
    out, weights = scaled_dot_product_attention(q, k, v)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


def test_dropout_keeps_output_equal_to_weights_times_values():
    q, k, v, _ = _inputs(0, (2,), 4, 6, 8, 3)
    torch.manual_seed(0)
    out, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert (weights == 0).any()
    torch.testing.assert_close(out, weights @ v)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: (torch.randn(3, 4), torch.randn(5, 3), torch.randn(5, 2), None), ValueError, "same feature size"),
        (lambda: (torch.randn(3, 4), torch.randn(5, 4), torch.randn(6, 2), None), ValueError, "same number of positions"),
        (lambda: (torch.randn(4), torch.randn(5, 4), torch.randn(5, 2), None), ValueError, "at least 2 dimensions"),
        (lambda: (torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2), torch.ones(3, 5)), TypeError, "boolean"),
        (
            lambda: (torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2), torch.ones(3, 4, dtype=torch.bool)),
            ValueError, "does not broadcast",
        ),
        (
            lambda: (torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2), torch.ones(2, 1, 1, 5, dtype=torch.bool)),
            ValueError, "without adding dimensions",
        ),
        (lambda: (torch.arange(4).reshape(1, 4), torch.randn(5, 4), torch.randn(5, 2), None), TypeError, "floating-point"),
        (lambda: ([[1.0]], torch.randn(5, 4), torch.randn(5, 2), None), TypeError, "torch.Tensor"),
    ],
)
def test_errors_name_what_was_expected(make, error, words):
    q, k, v, mask = make()
    with pytest.raises(error, match=words):
        scaled_dot_product_attention(q, k, v, attn_mask=mask)


def test_bad_dropout_rejected():
    q = torch.randn(2, 4)
    with pytest.raises(ValueError, match="dropout_p"):
        scaled_dot_product_attention(q, q, q, dropout_p=1.0)
