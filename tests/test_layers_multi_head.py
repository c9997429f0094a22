"""MultiHeadAttention: agreement with torch.nn.MultiheadAttention, heads, masks, properties."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.attention import causal_mask, combine_masks, lengths_mask
from course_lib.layers import MultiHeadAttention, copy_from_torch_mha, merge_heads, split_heads

SEEDS = [0, 1, 2, 3, 4]


def _pair(seed: int, d_model: int = 16, n_heads: int = 4, kv_dim: int | None = None):
    torch.manual_seed(seed)
    theirs = nn.MultiheadAttention(d_model, n_heads, batch_first=True, kdim=kv_dim, vdim=kv_dim)
    # torch initialises the biases to 0; make them non-zero so that copying them is tested
    with torch.no_grad():
        theirs.in_proj_bias.normal_()
        theirs.out_proj.bias.normal_()
    ours = copy_from_torch_mha(MultiHeadAttention(d_model, n_heads, kv_dim=kv_dim), theirs)
    return ours.eval(), theirs.eval()


def _random_lengths(generator: torch.Generator, batch: int, length: int) -> torch.Tensor:
    return torch.randint(1, length + 1, (batch,), generator=generator)  # at least one real key


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal", "causal+padding"])
def test_self_attention_equals_torch(seed: int, mask_kind: str) -> None:
    ours, theirs = _pair(seed)
    generator = torch.Generator().manual_seed(100 + seed)
    batch, length = 3, 7
    x = torch.randn(batch, length, 16, generator=generator)
    keep = lengths_mask(_random_lengths(generator, batch, length), length)  # (B, 1, 1, L)
    causal = causal_mask(length)  # (L, L)
    our_mask = {"none": None, "padding": keep, "causal": causal, "causal+padding": combine_masks(causal, keep)}[mask_kind]
    # The boundary: torch's boolean masks mean True = NOT allowed.
    torch_kwargs = {
        "none": {},
        "padding": {"key_padding_mask": ~keep[:, 0, 0]},
        "causal": {"attn_mask": ~causal},
        "causal+padding": {"attn_mask": ~causal, "key_padding_mask": ~keep[:, 0, 0]},
    }[mask_kind]
    out, weights = ours(query=x, attn_mask=our_mask, return_attention=True)
    ref, ref_weights = theirs(x, x, x, need_weights=True, average_attn_weights=False, **torch_kwargs)
    # Query rows whose keys are all masked are NaN in torch (zero in ours); none occur here:
    # every sequence has at least one real key at position 0, visible to every query.
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_attention_equals_torch(seed: int) -> None:
    ours, theirs = _pair(seed)
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(2, 3, 16, generator=generator)
    memory = torch.randn(2, 6, 16, generator=generator)
    keep = lengths_mask(torch.tensor([6, 2]), 6)  # (B, 1, 1, Lk)
    out, weights = ours(query=query, key=memory, attn_mask=keep, return_attention=True)
    ref, ref_weights = theirs(query, memory, memory, key_padding_mask=~keep[:, 0, 0], average_attn_weights=False)
    assert weights.shape == (2, 4, 3, 6)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_cross_attention_with_other_key_size_equals_torch(seed: int) -> None:
    ours, theirs = _pair(seed, kv_dim=10)
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(2, 4, 16, generator=generator)
    memory = torch.randn(2, 5, 10, generator=generator)
    value = torch.randn(2, 5, 10, generator=generator)
    out = ours(query=query, key=memory, value=value)
    ref, _ = theirs(query, memory, value)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_per_head_mask_shape_b_h_lq_lk() -> None:
    ours, theirs = _pair(7)
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(2, 5, 16, generator=generator)
    mask = torch.rand(2, 4, 5, 5, generator=generator) > 0.4
    mask[..., 0] = True  # every row keeps one key
    out = ours(query=x, attn_mask=mask)
    ref, _ = theirs(x, x, x, attn_mask=~mask.reshape(8, 5, 5))  # torch wants (B*H, Lq, Lk)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


def test_split_and_merge_heads() -> None:
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).reshape(2, 3, 8)
    heads = split_heads(x, 4)  # (B, H, L, Dh)
    assert heads.shape == (2, 4, 3, 2)
    torch.testing.assert_close(heads[1, 2, 0], x[1, 0, 4:6])  # head 2 = features 4..5 of position 0
    torch.testing.assert_close(merge_heads(heads), x)
    with pytest.raises(ValueError, match="divisible"):
        split_heads(x, 3)


def test_weights_are_returned_not_stored() -> None:
    mha = MultiHeadAttention(8, 2)
    before = dict(vars(mha))
    x = torch.randn(2, 4, 8)
    out, weights = mha(query=x, return_attention=True)
    assert out.shape == (2, 4, 8) and weights.shape == (2, 2, 4, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 4))
    assert mha(query=x).shape == (2, 4, 8)  # a plain tensor without return_attention
    after = dict(vars(mha))
    assert before.keys() == after.keys()
    assert not any(isinstance(v, torch.Tensor) for v in after.values())


def test_fully_masked_rows_give_zero_weights_and_bias_output() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x = torch.randn(1, 3, 8)
    mask = torch.tensor([[True, True, False], [False, False, False], [True, False, True]])
    out, weights = mha(query=x, attn_mask=mask, return_attention=True)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert torch.all(weights[0, :, 1] == 0)
    torch.testing.assert_close(out[0, 1], mha.out_proj.bias)  # zero attention, then W_O's bias
    out.sum().backward()  # gradients stay finite
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_self_attention_is_permutation_equivariant(seed: int) -> None:
    torch.manual_seed(seed)
    mha = MultiHeadAttention(12, 3).eval()
    x = torch.randn(2, 6, 12)
    perm = torch.randperm(6)
    torch.testing.assert_close(mha(query=x[:, perm]), mha(query=x)[:, perm], atol=1e-6, rtol=1e-5)


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, dropout=0.5)
    x = torch.randn(2, 5, 8)
    _, w_train = mha(query=x, return_attention=True)
    assert (w_train == 0).any()  # some weights dropped
    mha.eval()
    torch.testing.assert_close(mha(query=x), mha(query=x))
    _, w_eval = mha(query=x, return_attention=True)
    torch.testing.assert_close(w_eval.sum(-1), torch.ones(2, 2, 5))


def test_errors_speak_to_the_student() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    mha = MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match=r"\(B, L, 8\)"):
        mha(query=torch.randn(4, 8))
    with pytest.raises(ValueError, match="ambiguous"):
        mha(query=torch.randn(2, 4, 8), attn_mask=torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="boolean"):
        mha(query=torch.randn(2, 4, 8), attn_mask=torch.ones(4, 4))
    with pytest.raises(TypeError):
        mha(torch.randn(2, 4, 8))  # keyword-only forward
