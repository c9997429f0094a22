"""Image (patch) and text encoders of the multimodal item model."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.data.item_features import images_to_tensor
from course_lib.layers import masked_mean
from course_lib.models.multimodal import (
    PatchEncoder,
    PatchEncoderConfig,
    TextEncoder,
    TextEncoderConfig,
    patchify,
)


def test_patchify_hand_computed():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)  # pixels 0..15, row by row
    expected = torch.tensor([[[0.0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]])
    torch.testing.assert_close(patchify(image, 2), expected)


@pytest.mark.parametrize(
    "seed, shape, patch", [(0, (2, 3, 24, 24), 8), (1, (3, 3, 24, 24), 6), (2, (1, 2, 12, 12), 4), (3, (2, 1, 6, 6), 3)]
)
def test_patchify_matches_unfold(seed, shape, patch):
    images = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    reference = F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)  # (B, P, C·p·p)
    torch.testing.assert_close(patchify(images, patch), reference)
    # the same with Tensor.unfold along rows then columns: (B, C, n, n, p, p)
    blocks = images.unfold(2, patch, patch).unfold(3, patch, patch)
    b, c, n = shape[0], shape[1], shape[2] // patch
    by_tensor_unfold = blocks.permute(0, 2, 3, 1, 4, 5).reshape(b, n * n, c * patch * patch)
    torch.testing.assert_close(patchify(images, patch), by_tensor_unfold)


@pytest.mark.parametrize(
    "images, patch, message",
    [
        (torch.zeros(2, 3, 24, 20), 8, "square"),
        (torch.zeros(2, 3, 24, 24), 7, "divisible"),
        (torch.zeros(3, 24, 24), 8, "(B, C, S, S)"),
    ],
)
def test_patchify_errors(images, patch, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        patchify(images, patch)


@pytest.mark.parametrize("patch, layers, heads", [(8, 1, 2), (6, 2, 4), (4, 1, 1)])
def test_patch_encoder_shapes_and_attention(patch, layers, heads):
    torch.manual_seed(patch)
    config = PatchEncoderConfig(patch_size=patch, d_model=16, n_heads=heads, n_layers=layers, dropout=0.0)
    encoder = PatchEncoder(config).eval()
    images = torch.rand(5, 3, 24, 24)
    out = encoder(images, return_attention=True)
    p = (24 // patch) ** 2
    assert config.num_patches == p
    assert out.pooled.shape == (5, 16) and out.states.shape == (5, p, 16)
    assert out.token_mask.shape == (5, p) and bool(out.token_mask.all())
    assert out.attention.shape == (5, layers, heads, p, p)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(5, layers, heads, p))
    torch.testing.assert_close(out.pooled, out.states.mean(1))
    assert encoder(images).attention is None
    # each image is encoded on its own: the batch does not mix items
    torch.testing.assert_close(encoder(images[2:3]).pooled, out.pooled[2:3], atol=1e-6, rtol=1e-5)


def test_patch_encoder_errors():
    encoder = PatchEncoder(PatchEncoderConfig(patch_size=8, d_model=16))
    with pytest.raises(ValueError, match="images_to_tensor"):
        encoder(torch.rand(2, 24, 24, 3))  # channels last
    with pytest.raises(TypeError, match="float"):
        encoder(torch.zeros(2, 3, 24, 24, dtype=torch.uint8))
    with pytest.raises(ValueError, match="divisible"):
        PatchEncoderConfig(image_size=24, patch_size=5)


def test_images_to_tensor():
    raw = torch.randint(0, 256, (4, 24, 24, 3), dtype=torch.uint8)
    x = images_to_tensor(raw.numpy())
    assert x.shape == (4, 3, 24, 24) and x.dtype == torch.float32
    torch.testing.assert_close(x[1, 2, 5, 7], raw[1, 5, 7, 2].float() / 255)
    with pytest.raises(ValueError, match="channels last"):
        images_to_tensor(raw.permute(0, 3, 1, 2).numpy())


def test_masked_mean_hand_computed_and_empty_rows():
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    torch.testing.assert_close(masked_mean(states, mask), torch.tensor([[2.0, 3.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="bool"):
        masked_mean(states, mask.long())


def _text_encoder(seed, **kw):
    torch.manual_seed(seed)
    return TextEncoder(TextEncoderConfig(vocab_size=12, d_model=16, n_heads=2, dropout=0.0, **kw)).eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_text_encoder_shapes_padding_and_masks(seed):
    encoder = _text_encoder(seed)
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 12, (4, 5), generator=g)
    tokens[1, 3:] = 0  # padding at the end
    tokens[2, :2] = 0  # padding at the start
    out = encoder(tokens, return_attention=True)
    assert out.pooled.shape == (4, 16) and out.states.shape == (4, 5, 16)
    assert torch.equal(out.token_mask, tokens != 0)
    assert out.attention.shape == (4, 1, 2, 5, 5)
    # padding keys get no attention; every query row sums to 1 over the real tokens
    assert torch.all(out.attention[1, ..., 3:] == 0) and torch.all(out.attention[2, ..., :2] == 0)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(4, 1, 2, 5))
    # padding invariance: more padding columns change nothing
    padded = torch.cat([tokens, torch.zeros(4, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(encoder(padded).pooled, out.pooled, atol=1e-6, rtol=1e-5)
    # without positions the text is a bag of words: shuffling the tokens changes nothing
    shuffled = tokens[:, torch.randperm(5, generator=g)]
    torch.testing.assert_close(encoder(shuffled).pooled, out.pooled, atol=1e-6, rtol=1e-5)


def test_text_encoder_positions_make_order_matter():
    encoder = _text_encoder(0, max_tokens=5)
    tokens = torch.tensor([[1, 2, 3, 4]])
    assert not torch.allclose(encoder(tokens).pooled, encoder(tokens.flip(1)).pooled)


def test_text_encoder_all_padding_row_is_zero_not_nan():
    out = _text_encoder(0)(torch.tensor([[0, 0, 0], [1, 2, 0]]), return_attention=True)
    assert torch.isfinite(out.states).all() and torch.isfinite(out.attention).all()
    torch.testing.assert_close(out.pooled[0], torch.zeros(16))
    assert torch.all(out.attention[0] == 0)


def test_text_encoder_errors():
    encoder = _text_encoder(0)
    with pytest.raises(ValueError, match="0..11"):
        encoder(torch.tensor([[1, 12]]))
    with pytest.raises(ValueError, match="long"):
        encoder(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        encoder(torch.tensor([1, 2]))
