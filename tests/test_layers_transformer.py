"""Feed-forward network, Transformer block and encoder: references, causality, padding, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.attention import lengths_mask
from course_lib.layers import (
    PositionWiseFeedForward,
    TransformerBlock,
    TransformerConfig,
    TransformerEncoder,
    copy_from_torch_mha,
)

SEEDS = [0, 1, 2]


# --- feed-forward -------------------------------------------------------------------------


def test_feed_forward_is_linear_activation_linear() -> None:
    torch.manual_seed(0)
    ffn = PositionWiseFeedForward(6, 24, activation="relu").eval()
    x = torch.randn(2, 5, 6)
    by_hand = torch.relu(x @ ffn.expand.weight.T + ffn.expand.bias) @ ffn.contract.weight.T + ffn.contract.bias
    torch.testing.assert_close(ffn(x), by_hand)


@pytest.mark.parametrize("seed", SEEDS)
def test_feed_forward_acts_on_each_position_independently(seed: int) -> None:
    torch.manual_seed(seed)
    ffn = PositionWiseFeedForward(8, 32).eval()
    x = torch.randn(3, 6, 8)
    out = ffn(x)
    one_at_a_time = torch.stack([ffn(x[:, j]) for j in range(6)], dim=1)  # same weights per position
    torch.testing.assert_close(out, one_at_a_time)
    changed = x.clone()
    changed[:, 2] += 1.0
    diff = (ffn(changed) - out).abs().amax(dim=(0, 2))  # (L,)
    assert diff[2] > 0 and torch.all(diff[[0, 1, 3, 4, 5]] == 0)


def test_feed_forward_rejects_unknown_activation() -> None:
    with pytest.raises(ValueError, match="relu"):
        PositionWiseFeedForward(4, 8, activation="tanh")  # type: ignore[arg-type]


# --- block vs torch.nn.TransformerEncoderLayer -------------------------------------------


def _copy_block_from_torch(ours: TransformerBlock, theirs: nn.TransformerEncoderLayer) -> None:
    copy_from_torch_mha(ours.attention, theirs.self_attn)
    pairs = [
        (ours.feed_forward.expand, theirs.linear1),
        (ours.feed_forward.contract, theirs.linear2),
        (ours.norm1, theirs.norm1),
        (ours.norm2, theirs.norm2),
    ]
    with torch.no_grad():
        for mine, ref in pairs:
            mine.weight.copy_(ref.weight)
            mine.bias.copy_(ref.bias)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_block_equals_torch_encoder_layer(seed: int, norm_first: bool, activation: str) -> None:
    torch.manual_seed(seed)
    config = TransformerConfig(d_model=16, n_heads=4, d_ff=40, dropout=0.0, norm_first=norm_first, activation=activation)
    theirs = nn.TransformerEncoderLayer(16, 4, 40, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-trivial biases and norms
    ours = TransformerBlock(config)
    _copy_block_from_torch(ours, theirs)
    x = torch.randn(3, 6, 16)
    keep = lengths_mask(torch.tensor([6, 4, 1]), 6)  # (B, 1, 1, L)
    ref = theirs(x, src_key_padding_mask=~keep[:, 0, 0])  # torch: True = NOT allowed
    out = ours(x, attn_mask=keep)
    real = keep[:, 0, 0]  # compare real positions (torch's fast paths may zero padded ones)
    torch.testing.assert_close(out[real], ref[real], atol=1e-5, rtol=1e-4)


def test_block_returns_weights_on_request() -> None:
    block = TransformerBlock(TransformerConfig(d_model=8, n_heads=2))
    x = torch.randn(2, 5, 8)
    out, weights = block(x, return_attention=True)
    assert out.shape == (2, 5, 8) and weights.shape == (2, 2, 5, 5)
    assert isinstance(block(x), torch.Tensor)


# --- encoder: causality, padding, weights ------------------------------------------------


def _encoder(seed: int, causal: bool, norm_first: bool = True) -> TransformerEncoder:
    torch.manual_seed(seed)
    config = TransformerConfig(d_model=16, n_heads=4, n_layers=3, dropout=0.0, causal=causal, norm_first=norm_first)
    return TransformerEncoder(config).eval()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("norm_first", [True, False])
def test_causal_encoder_ignores_the_future(seed: int, norm_first: bool) -> None:
    encoder = _encoder(seed, causal=True, norm_first=norm_first)
    x = torch.randn(2, 8, 16)
    changed = x.clone()
    changed[:, 5:] = torch.randn(2, 3, 16)  # change positions 5, 6, 7
    out, out_changed = encoder(x), encoder(changed)
    torch.testing.assert_close(out_changed[:, :5], out[:, :5], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(out_changed[:, 5:], out[:, 5:])
    # the same change reaches every position of the bidirectional encoder
    bidirectional = _encoder(seed, causal=False, norm_first=norm_first)
    assert not torch.allclose(bidirectional(changed)[:, :5], bidirectional(x)[:, :5])


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("causal", [True, False])
def test_encoder_padding_invariance(seed: int, causal: bool) -> None:
    encoder = _encoder(seed, causal=causal)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 7, 16, generator=generator)
    lengths = torch.tensor([4, 7])
    keep = lengths_mask(lengths, 7)  # (B, 1, 1, L)
    out = encoder(x, attn_mask=keep)
    # 1) whatever sits in the padded slots does not matter
    noisy = x.clone()
    noisy[0, 4:] = 100 * torch.randn(3, 16, generator=generator)
    torch.testing.assert_close(encoder(noisy, attn_mask=keep)[0, :4], out[0, :4], atol=1e-5, rtol=1e-4)
    # 2) the same sequence without its padding gives the same outputs
    torch.testing.assert_close(encoder(x[:1, :4])[0], out[0, :4], atol=1e-5, rtol=1e-4)
    # 3) more padding appended changes nothing either
    longer = torch.cat([x, torch.randn(2, 3, 16, generator=generator)], dim=1)
    out_longer = encoder(longer, attn_mask=lengths_mask(lengths, 10))
    torch.testing.assert_close(out_longer[0, :4], out[0, :4], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out_longer[1, :7], out[1], atol=1e-5, rtol=1e-4)
    assert torch.isfinite(out).all()


def test_left_padded_causal_rows_stay_finite() -> None:
    """SASRec pads on the left: the first queries see only padding (all masked), never NaN."""
    encoder = _encoder(0, causal=True)
    keep = torch.tensor([[False, False, True, True, True]])[:, None, None, :]  # (B, 1, 1, L)
    x = torch.randn(1, 5, 16)
    out, weights = encoder(x, attn_mask=keep, return_attention=True)
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    assert torch.all(weights[0, :, :, :2] == 0)  # no layer, head or query attends to padding
    torch.testing.assert_close(encoder(x[:, 2:])[0], out[0, 2:], atol=1e-5, rtol=1e-4)


def test_encoder_returns_every_layers_weights() -> None:
    encoder = _encoder(0, causal=True)
    x = torch.randn(2, 6, 16)
    keep = lengths_mask(torch.tensor([6, 3]), 6)
    out, weights = encoder(x, attn_mask=keep, return_attention=True)
    assert out.shape == (2, 6, 16) and weights.shape == (2, 3, 4, 6, 6)  # (B, layers, H, L, L)
    assert weights.requires_grad  # differentiable: a loss may use them (e.g. an attention regulariser)
    upper = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    assert torch.all(weights[..., upper] == 0)  # causal: nothing above the diagonal
    assert torch.all(weights[1, :, :, :, 3:] == 0)  # padded keys get nothing
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 4, 6))
    torch.testing.assert_close(encoder(x, attn_mask=keep), out)
    # the weights are each block's own
    h = x
    for layer, block in enumerate(encoder.blocks):
        h, w = block(h, attn_mask=encoder.full_mask(6, keep, x.device), return_attention=True)
        torch.testing.assert_close(w, weights[:, layer])


def test_encoder_final_norm_only_for_pre_ln() -> None:
    assert isinstance(_encoder(0, causal=False, norm_first=True).final_norm, nn.LayerNorm)
    assert isinstance(_encoder(0, causal=False, norm_first=False).final_norm, nn.Identity)


@pytest.mark.parametrize("norm_first", [True, False])
def test_pre_and_post_ln_both_train_on_a_tiny_batch(norm_first: bool) -> None:
    torch.manual_seed(0)
    config = TransformerConfig(d_model=16, n_heads=2, n_layers=2, dropout=0.1, norm_first=norm_first, causal=True)
    encoder = TransformerEncoder(config)
    head = nn.Linear(16, 5)
    x = torch.randn(8, 6, 16)
    y = torch.randint(0, 5, (8, 6))
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
    losses = []
    for _ in range(60):
        loss = nn.functional.cross_entropy(head(encoder(x)).reshape(-1, 5), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_config_validation_and_defaults() -> None:
    assert TransformerConfig(d_model=32).ffn_dim == 128
    assert TransformerConfig(d_model=32, d_ff=50).ffn_dim == 50
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        TransformerConfig(dropout=1.0)
    with pytest.raises(ValueError, match="n_layers"):
        TransformerConfig(n_layers=0)
    encoder = TransformerEncoder(TransformerConfig(d_model=8, n_heads=2))
    with pytest.raises(ValueError, match="embedded inputs"):
        encoder(torch.randint(1, 5, (2, 4)))
