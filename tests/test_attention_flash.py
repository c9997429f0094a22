"""Tiled (flash) attention: equal to plain attention with masks, gradients equal to autograd's,
the paper's block sizes, the counted memory traffic, float32 statistics for half inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import PAD_ID
from course_lib.attention import (
    HBMTraffic,
    causal_mask,
    flash_attention,
    flash_block_sizes,
    padding_mask,
    scaled_dot_product_attention,
    standard_attention_traffic,
)


def qkv(seed: int, batch: int, heads: int, length_q: int, length_k: int, dim: int = 8, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, heads, n, dim, generator=g, dtype=dtype) for n in (length_q, length_k, length_k))


def padded_items(seed: int, length: int) -> torch.Tensor:
    items = torch.randint(1, 9, (3, length), generator=torch.Generator().manual_seed(seed))
    items[1, : length // 2] = PAD_ID  # left padding
    items[2, :] = PAD_ID  # a user with no events: every row fully masked
    return items


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("length", [1, 7, 33])
@pytest.mark.parametrize(("block_q", "block_k"), [(1, 1), (3, 5), (8, 2), (64, 64)])
def test_equals_plain_attention_without_mask(seed, length, block_q, block_k):
    q, k, v = qkv(seed, 2, 3, length, length)
    expected, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(flash_attention(q, k, v, block_q=block_q, block_k=block_k), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("length", [5, 12, 31])
@pytest.mark.parametrize(("block_q", "block_k"), [(1, 4), (4, 1), (5, 7), (64, 64)])
def test_equals_plain_attention_with_causal_and_padding_masks(seed, length, block_q, block_k):
    q, k, v = qkv(seed, 3, 2, length, length)
    items = padded_items(seed, length)
    mask = causal_mask(length) & padding_mask(items)  # (B, 1, L, L)
    expected, _ = scaled_dot_product_attention(q, k, v, mask)
    dense = flash_attention(q, k, v, mask, block_q=block_q, block_k=block_k)
    built = flash_attention(q, k, v, padding_mask(items), is_causal=True, block_q=block_q, block_k=block_k)
    torch.testing.assert_close(dense, expected)
    torch.testing.assert_close(built, expected)
    assert not torch.isnan(built).any()
    assert torch.all(built[2] == 0), "a fully masked row must give a zero output"


def test_fewer_queries_than_keys_random_mask_and_torch_agreement():
    q, k, v = qkv(4, 2, 2, 3, 11)
    expected, _ = scaled_dot_product_attention(q, k, v, causal_mask(3, 11))
    torch.testing.assert_close(flash_attention(q, k, v, is_causal=True, block_q=2, block_k=4), expected)
    dense = torch.rand(2, 2, 3, 11, generator=torch.Generator().manual_seed(4)) > 0.5
    dense[0, 0, 0] = False  # one row with nothing to attend to
    torch.testing.assert_close(flash_attention(q, k, v, dense, block_q=2, block_k=3), scaled_dot_product_attention(q, k, v, dense)[0])
    q, k, v = qkv(5, 2, 4, 40, 40)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(flash_attention(q, k, v, is_causal=True, block_q=8, block_k=16), expected)


def test_log_sum_exp_is_the_row_normaliser():
    q, k, v = qkv(6, 1, 2, 9, 9, dtype=torch.float64)
    mask = causal_mask(9)
    _, lse = flash_attention(q, k, v, mask, block_q=2, block_k=4, return_lse=True)
    scores = (q @ k.transpose(-2, -1) / math.sqrt(8)).masked_fill(~mask, float("-inf"))
    torch.testing.assert_close(lse, torch.logsumexp(scores, dim=-1))


@pytest.mark.parametrize("is_causal", [False, True])
def test_gradcheck_float64(is_causal):
    q, k, v = (t.requires_grad_(True) for t in qkv(7, 2, 1, 6, 6, dim=4, dtype=torch.float64))
    key_mask = padding_mask(torch.tensor([[1, 2, 3, 4, 5, 6], [0, 0, 0, 3, 4, 5]]))  # (B, 1, 1, L)
    assert torch.autograd.gradcheck(
        lambda a, b, c: flash_attention(a, b, c, key_mask, is_causal=is_causal, block_q=4, block_k=4), (q, k, v)
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_gradients_match_autograd_of_plain_attention_with_fully_masked_rows(seed):
    q, k, v = (t.requires_grad_(True) for t in qkv(seed, 3, 2, 10, 10, dtype=torch.float64))
    items = padded_items(seed, 10)
    mask = causal_mask(10) & padding_mask(items)
    grad_out = torch.randn(3, 2, 10, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    got = torch.autograd.grad(flash_attention(q, k, v, padding_mask(items), is_causal=True, block_q=3, block_k=4), (q, k, v), grad_out)
    expected = torch.autograd.grad(scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v), grad_out)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e)
    assert torch.all(got[0][2] == 0), "a user with no events gets no query gradient"


def test_broadcast_inputs_get_gradients_of_their_own_shape():
    g = torch.Generator().manual_seed(8)
    q = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(1, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)  # shared by both users
    v = torch.randn(1, 3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    flash_attention(q, k, v, block_q=2, block_k=2).sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    scaled_dot_product_attention(q, k, v)[0].sum().backward()
    for got, t in zip(grads, (q, k, v)):
        assert got.shape == t.shape
        torch.testing.assert_close(got, t.grad)


def test_saves_linear_memory_for_backward():
    q, k, v = (t.requires_grad_(True) for t in qkv(9, 1, 2, 128, 128))
    saved: list[int] = []

    def pack(x: torch.Tensor) -> torch.Tensor:
        saved.append(x.numel())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        flash_attention(q, k, v, is_causal=True, block_q=16, block_k=32)
    # q, k, v, O (each 2 x 128 x 8) and L (2 x 128): nothing of size L x L
    assert sorted(saved) == sorted([2 * 128 * 8] * 4 + [2 * 128])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_keep_float32_statistics(dtype):
    q, k, v = qkv(10, 1, 2, 300, 300, dim=32)
    q, k = q * 3, k * 3  # peaked weights
    reference = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # float32
    out, lse = flash_attention(q.to(dtype), k.to(dtype), v.to(dtype), is_causal=True, block_q=32, block_k=64, return_lse=True)
    assert out.dtype == dtype and lse.dtype == torch.float32
    # against the float32 reference: the error of rounding the inputs to 11 (float16) or 8 (bfloat16) bits
    torch.testing.assert_close(out.float(), reference, atol=1e-2 if dtype == torch.float16 else 6e-2, rtol=0.0)
    # against exact attention of the rounded inputs: within one unit in the last place of outputs below 4,
    # so the tiled loop itself adds no error beyond rounding its result to the output dtype
    exact = F.scaled_dot_product_attention(q.to(dtype).float(), k.to(dtype).float(), v.to(dtype).float(), is_causal=True)
    assert exact.abs().max() < 4
    one_ulp_below_4 = 2.0 * torch.finfo(dtype).eps  # spacing of dtype's numbers in [2, 4)
    torch.testing.assert_close(out.float(), exact.to(dtype).float(), atol=one_ulp_below_4, rtol=0.0)


def test_block_sizes_follow_the_paper():
    assert flash_block_sizes(49152, 64) == (64, 192)  # Bc = ceil(M / 4d) = 192, Br = min(192, 64)
    assert flash_block_sizes(1000, 64) == (4, 4)  # ceil(1000 / 256) = 4 < d
    assert flash_block_sizes(1, 8) == (1, 1)
    with pytest.raises(ValueError, match="sram_floats"):
        flash_block_sizes(0, 64)
    with pytest.raises(ValueError, match="head_dim"):
        flash_block_sizes(100, 2.5)


@pytest.mark.parametrize(("length", "dim", "sram"), [(64, 8, 256), (100, 16, 1000), (256, 32, 8192)])
def test_counted_traffic_matches_the_closed_form(length, dim, sram):
    block_q, block_k = flash_block_sizes(sram, dim)
    traffic = HBMTraffic()
    q, k, v = (t[0, 0] for t in qkv(11, 1, 1, length, length, dim=dim))
    flash_attention(q, k, v, block_q=block_q, block_k=block_k, traffic=traffic)
    n_key_blocks = math.ceil(length / block_k)
    # K and V once; per key block every Q_i, O_i, l_i, m_i read and O_i, l_i, m_i written
    assert traffic.reads == 2 * length * dim + n_key_blocks * (2 * length * dim + 2 * length)
    assert traffic.writes == n_key_blocks * (length * dim + 2 * length)
    standard = standard_attention_traffic(length, dim)
    assert (standard.reads, standard.writes) == (3 * length * dim + 2 * length**2, length * dim + 2 * length**2)


def test_errors_name_what_was_expected():
    q, k, v = qkv(0, 1, 1, 4, 4)
    with pytest.raises(TypeError, match="boolean"):
        flash_attention(q, k, v, torch.ones(4, 4))
    with pytest.raises(ValueError, match="block_q"):
        flash_attention(q, k, v, block_q=0)
    with pytest.raises(ValueError, match="block_k"):
        flash_attention(q, k, v, block_k=True)
    with pytest.raises(ValueError, match="is_causal needs Lk >= Lq"):
        flash_attention(q, k[..., :2, :], v[..., :2, :], is_causal=True)
    with pytest.raises(TypeError, match="one dtype"):
        flash_attention(q, k.double(), v)
    with pytest.raises(TypeError, match="floating-point"):
        flash_attention(q.long(), k, v)
