"""Chunked attention with an online softmax equals plain attention, masks and all, without NaN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib import PAD_ID
from course_lib.attention import causal_mask, chunked_attention, padding_mask, scaled_dot_product_attention


def qkv(seed: int, batch: int, heads: int, length_q: int, length_k: int, dim: int = 8, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, length_q, dim, generator=g) * scale
    k = torch.randn(batch, heads, length_k, dim, generator=g) * scale
    v = torch.randn(batch, heads, length_k, dim, generator=g)
    return q, k, v


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length", [1, 7, 16, 33])
@pytest.mark.parametrize("chunk_size", [1, 3, 8, 16, 100])
def test_equals_plain_attention_without_mask(seed, length, chunk_size):
    q, k, v = qkv(seed, 2, 3, length, length)
    expected, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(chunked_attention(q, k, v, chunk_size=chunk_size), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length", [5, 12, 31])
@pytest.mark.parametrize("chunk_size", [1, 4, 7, 64])
def test_equals_plain_attention_with_causal_and_padding_masks(seed, length, chunk_size):
    q, k, v = qkv(seed, 3, 2, length, length)
    items = torch.randint(1, 9, (3, length), generator=torch.Generator().manual_seed(seed))
    items[1, : length // 2] = PAD_ID  # left padding
    items[2, :] = PAD_ID  # a user with no events at all: every row fully masked
    mask = causal_mask(length) & padding_mask(items)  # (B, 1, L, L)
    expected, _ = scaled_dot_product_attention(q, k, v, mask)
    got = chunked_attention(q, k, v, mask, chunk_size=chunk_size)
    torch.testing.assert_close(got, expected)
    # the same with the causal part built chunk by chunk instead of passed densely
    torch.testing.assert_close(chunked_attention(q, k, v, padding_mask(items), is_causal=True, chunk_size=chunk_size), expected)
    assert not torch.isnan(got).any()
    assert torch.all(got[2] == 0), "a fully masked row must give a zero output"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("chunk_size", [2, 5])
def test_causal_with_fewer_queries_than_keys_is_the_cache_case(seed, chunk_size):
    q, k, v = qkv(seed, 2, 2, 3, 11)
    expected, _ = scaled_dot_product_attention(q, k, v, causal_mask(3, 11))
    torch.testing.assert_close(chunked_attention(q, k, v, is_causal=True, chunk_size=chunk_size), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_torch_fused_attention(seed):
    q, k, v = qkv(seed, 2, 4, 40, 40)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(chunked_attention(q, k, v, is_causal=True, chunk_size=9), expected)


def test_large_scores_do_not_overflow():
    q, k, v = qkv(0, 1, 1, 10, 10, scale=30.0)  # scores in the hundreds: exp would overflow without the running max
    expected, _ = scaled_dot_product_attention(q, k, v)
    got = chunked_attention(q, k, v, chunk_size=3)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected)


def test_random_dense_mask_and_broadcast_key_mask():
    q, k, v = qkv(3, 2, 2, 6, 9)
    g = torch.Generator().manual_seed(3)
    dense = torch.rand(2, 2, 6, 9, generator=g) > 0.5  # some rows fully masked by chance
    dense[0, 0, 0] = False
    expected, _ = scaled_dot_product_attention(q, k, v, dense)
    torch.testing.assert_close(chunked_attention(q, k, v, dense, chunk_size=4), expected)
    all_keys = torch.tensor([True, False])[:, None, None, None]  # (B, 1, 1, 1): user 1 may attend nothing
    got = chunked_attention(q, k, v, all_keys, chunk_size=4)
    torch.testing.assert_close(got[0], scaled_dot_product_attention(q[0], k[0], v[0])[0])
    assert torch.all(got[1] == 0)


def test_works_on_unbatched_inputs_and_float64():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(chunked_attention(q, k, v, chunk_size=2), scaled_dot_product_attention(q, k, v)[0])


def test_gradients_match_plain_attention():
    q, k, v = (t.requires_grad_(True) for t in qkv(1, 1, 2, 8, 8))
    mask = causal_mask(8)
    chunked_attention(q, k, v, mask, chunk_size=3).square().sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    scaled_dot_product_attention(q, k, v, mask)[0].square().sum().backward()
    for got, t in zip(grads, (q, k, v)):
        torch.testing.assert_close(got, t.grad)


def test_errors_name_what_was_expected():
    q, k, v = qkv(0, 1, 1, 4, 4)
    with pytest.raises(TypeError, match="boolean"):
        chunked_attention(q, k, v, torch.ones(4, 4))
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_attention(q, k, v, chunk_size=0)
    with pytest.raises(ValueError, match="does not broadcast"):
        chunked_attention(q, k, v, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="same number of positions"):
        chunked_attention(q, k, v[..., :3, :])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_accumulated_in_float32(dtype):
    q, k, v = qkv(5, 1, 2, 600, 600, dim=16)
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # float32
    got = chunked_attention(q.to(dtype), k.to(dtype), v.to(dtype), is_causal=True, chunk_size=64)
    assert got.dtype == dtype
    # the error of rounding inputs and output to 11 (float16) or 8 (bfloat16) significant bits, no more
    torch.testing.assert_close(got.float(), reference, atol=1e-2 if dtype == torch.float16 else 6e-2, rtol=0.0)
    exact = F.scaled_dot_product_attention(q.to(dtype).float(), k.to(dtype).float(), v.to(dtype).float(), is_causal=True)
    assert exact.abs().max() < 4
    torch.testing.assert_close(got.float(), exact.to(dtype).float(), atol=2.0 * torch.finfo(dtype).eps, rtol=0.0)


def test_mixed_dtypes_are_refused():
    q, k, v = qkv(0, 1, 1, 4, 4)
    with pytest.raises(TypeError, match="one dtype"):
        chunked_attention(q, k.half(), v)
