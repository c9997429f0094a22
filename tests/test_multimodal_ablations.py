"""The two controls of notebook 12: the patch encoder without attention, and modality erasure."""

import itertools

import pytest
import torch

from course_lib.data.shopworld import ShopWorldConfig, generate_shopworld, shopworld_features
from course_lib.models.multimodal import (
    MODALITIES,
    ConcatFusion,
    GatedModalityFusion,
    MultimodalEncoderConfig,
    MultimodalItemEncoder,
    PatchEncoder,
    PatchEncoderConfig,
    erase_modalities,
    patchify,
)
from course_lib.models.sasrec import SASRec, SASRecConfig

D = 16


@pytest.fixture(scope="module")
def world():
    return generate_shopworld(ShopWorldConfig(num_items=96, num_users=30, seed=3))


@pytest.fixture(scope="module")
def features(world):
    return shopworld_features(world)


# ---- n_layers = 0: a linear readout of the patches ---------------------------------------------


@pytest.mark.parametrize("seed, patch", [(0, 8), (1, 6), (2, 4)])
def test_patch_encoder_without_layers_is_a_linear_readout(seed, patch):
    torch.manual_seed(seed)
    encoder = PatchEncoder(PatchEncoderConfig(patch_size=patch, d_model=D, n_layers=0)).eval()
    assert encoder.encoder is None and not any("encoder." in name for name, _ in encoder.named_parameters())
    images = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(seed))
    out = encoder(images, return_attention=True)
    c = encoder.config
    # by hand: mean over patches of (standardised patch) W_E^T + b + pos_k
    patches = patchify((images - c.pixel_mean) / c.pixel_std, patch)  # (B, P, C·p·p)
    by_hand = (patches @ encoder.patch_embedding.weight.T + encoder.patch_embedding.bias
               + encoder.positions.embedding.weight).mean(dim=1)  # (B, D)
    torch.testing.assert_close(out.pooled, by_hand)
    assert out.attention is None and out.states.shape == (4, c.num_patches, D)
    # linear in the pixels: f(a x + b y) - f(0) = a (f(x) - f(0)) + b (f(y) - f(0)), with the standardisation's shift
    x, y, zero = images[:2], images[2:], torch.zeros(2, 3, 24, 24)
    f0 = encoder(zero).pooled
    torch.testing.assert_close(encoder(0.3 * x + 0.5 * y).pooled - f0,
                               0.3 * (encoder(x).pooled - f0) + 0.5 * (encoder(y).pooled - f0), atol=1e-5, rtol=1e-4)


def test_layers_must_be_a_non_negative_int():
    with pytest.raises(ValueError, match="n_layers must be an int >= 0"):
        PatchEncoderConfig(n_layers=-1)
    with pytest.raises(ValueError, match="image_layers must be None"):
        MultimodalEncoderConfig(96, 25, image_layers=-2)
    with pytest.raises(ValueError, match="image_layers must be None"):
        MultimodalEncoderConfig(96, 25, image_layers=True)


def test_image_layers_set_the_image_encoder_only(world, features):
    config = MultimodalEncoderConfig(world.num_items, len(world.vocabulary), d_model=D, patch_size=8, n_layers=1, image_layers=0)
    encoder = MultimodalItemEncoder(config, features)
    assert encoder.image_encoder.encoder is None  # linear readout
    assert len(encoder.text_encoder.encoder.blocks) == 1  # the text keeps its attention
    assert encoder.encode(torch.arange(5)).vectors.shape == (5, D)
    two = MultimodalEncoderConfig(world.num_items, len(world.vocabulary), d_model=D, patch_size=8, n_layers=2)
    default = MultimodalItemEncoder(two, features)
    assert len(default.image_encoder.encoder.blocks) == 2  # None follows n_layers


# ---- erasure -----------------------------------------------------------------------------------


def _vectors(seed, batch=5, m=4):
    return torch.randn(batch, m, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed, keep", [(0, (True, False, True, True)), (1, (False, False, True, False)), (2, (True,) * 4)])
def test_erasing_in_the_gated_fusion_renormalises_the_kept_weights(seed, keep):
    torch.manual_seed(seed)
    fusion = GatedModalityFusion(4, D)
    with torch.no_grad():
        fusion.modality_bias.normal_()
    vectors, keep = _vectors(seed), torch.tensor(keep)
    full, erased = fusion(vectors), fusion(vectors, keep=keep)
    assert torch.all(erased.modality_weights[:, ~keep] == 0)
    # the kept weights are the full weights renormalised over the kept modalities
    kept = full.modality_weights[:, keep]
    torch.testing.assert_close(erased.modality_weights[:, keep], kept / kept.sum(dim=1, keepdim=True))
    # and the vector is the gated fusion of the kept modalities alone
    mixed = (erased.modality_weights[:, keep].unsqueeze(-1) * vectors[:, keep]).sum(dim=1)
    torch.testing.assert_close(erased.vector, fusion.project(mixed))


@pytest.mark.parametrize("seed", [0, 1])
def test_erasing_in_the_concat_fusion_zeroes_the_block(seed):
    torch.manual_seed(seed)
    fusion = ConcatFusion(4, D)
    vectors, keep = _vectors(seed), torch.tensor([True, True, False, True])
    zeroed = vectors.clone()
    zeroed[:, 2] = 0
    torch.testing.assert_close(fusion(vectors, keep=keep).vector, fusion(zeroed).vector)
    # by hand: W restricted to the kept blocks
    w = fusion.project.weight.reshape(D, 4, D)  # (D_out, M, D_in)
    by_hand = torch.einsum("omi,bmi->bo", w[:, [0, 1, 3]], vectors[:, [0, 1, 3]]) + fusion.project.bias
    torch.testing.assert_close(fusion(vectors, keep=keep).vector, by_hand, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("keep, message", [
    (torch.tensor([True, False]), r"\(M=4,\)"),
    (torch.tensor([1, 0, 1, 1]), "bool"),
    (torch.zeros(4, dtype=torch.bool), "at least one"),
])
def test_bad_keep_masks(keep, message):
    with pytest.raises(ValueError, match=message):
        GatedModalityFusion(4, D)(_vectors(0), keep=keep)
    with pytest.raises(ValueError, match=message):
        ConcatFusion(4, D)(_vectors(0), keep=keep)


def _sasrec(world, features, fusion="gated", seed=0):
    torch.manual_seed(seed)
    items = MultimodalItemEncoder(
        MultimodalEncoderConfig(world.num_items, len(world.vocabulary), fusion=fusion, d_model=D, patch_size=8, dropout=0.0),
        features,
    )
    return SASRec(SASRecConfig(world.num_items, max_len=10, d_model=D, n_heads=2, n_layers=1, dropout=0.0), items).eval()


@pytest.mark.parametrize("fusion, erased", list(itertools.product(("concat", "gated"), [("text",), ("id", "price")])))
def test_erase_modalities_copies_and_matches_the_fusion(world, features, fusion, erased):
    model = _sasrec(world, features, fusion)
    before = model.item_encoder.table().detach().clone()
    copy = erase_modalities(model, erased)
    assert model.item_encoder.config.erased == () and copy.item_encoder.config.erased == erased  # original untouched
    torch.testing.assert_close(model.item_encoder.table(), before)
    items = torch.arange(1, world.num_items + 1)
    with torch.no_grad():
        full = model.item_encoder.encode(items)
        keep = torch.tensor([m not in erased for m in MODALITIES])
        expected = model.item_encoder.fusion(full.modality_vectors, keep=keep).vector
        got = copy.item_encoder.encode(items)
    torch.testing.assert_close(got.vectors, expected)
    assert not torch.allclose(got.vectors, full.vectors)  # erasing changes the items
    if fusion == "gated":
        assert torch.all(got.modality_weights[:, ~keep] == 0)
    assert copy.score_all is not None and copy.item_encoder.table().shape == before.shape


def test_erase_modalities_errors(world, features):
    model = _sasrec(world, features, "gated")
    with pytest.raises(ValueError, match="erased must name modalities in use"):
        erase_modalities(model, "colour")
    with pytest.raises(ValueError, match="leaves nothing to fuse"):
        erase_modalities(model, MODALITIES)
    with pytest.raises(ValueError, match="concat and gated fusions only"):
        erase_modalities(_sasrec(world, features, "cross"), "text")
    with pytest.raises(TypeError, match="item_encoder is a MultimodalItemEncoder"):
        erase_modalities(torch.nn.Linear(2, 2), "text")
