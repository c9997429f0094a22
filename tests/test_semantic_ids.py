"""Semantic IDs (notebook 16): residual k-means, the disambiguation token, code statistics, bad inputs."""

from __future__ import annotations

import pytest
import torch
from sklearn.cluster import KMeans

from course_lib.models.generative import (
    add_disambiguation,
    code_stats,
    fit_residual_quantizer,
    kmeans,
    nearest_centroid,
    quantize_level,
)


def clustered(seed: int, n: int = 240, d: int = 12) -> torch.Tensor:
    """Points around 8 random centres at 3 scales: residual levels have structure to find."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, d, generator=g) * 3
    sub = torch.randn(8, 4, d, generator=g)
    which, part = torch.randint(8, (n,), generator=g), torch.randint(4, (n,), generator=g)
    return centres[which] + sub[which, part] + 0.3 * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("seed", range(5))
def test_reconstruction_error_falls_with_every_level(seed):
    x = clustered(seed)
    quantizer = fit_residual_quantizer(x, levels=4, codebook_size=8, seed=seed)
    errors = [float(x.pow(2).sum(1).mean())] + [quantizer.reconstruction_error(x, levels) for levels in range(1, 5)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    # fitting fewer levels gives exactly the first codebooks of the deeper fit (the same seeded draws)
    two = fit_residual_quantizer(x, levels=2, codebook_size=8, seed=seed)
    for a, b in zip(two.codebooks, quantizer.codebooks):
        torch.testing.assert_close(a, b)


def test_quantize_level_is_the_nearest_centroid_by_hand():
    g = torch.Generator().manual_seed(0)
    residuals, codebook = torch.randn(30, 5, generator=g), torch.randn(7, 5, generator=g) * 2
    codes, rest = quantize_level(residuals, codebook)
    for row in range(30):
        distances = [float(((residuals[row] - codebook[k]) ** 2).sum()) for k in range(7)]
        assert codes[row] == min(range(7), key=distances.__getitem__)
    torch.testing.assert_close(rest, residuals - codebook[codes])


def test_encode_then_decode_is_the_sum_of_the_chosen_centroids():
    x = clustered(1)
    quantizer = fit_residual_quantizer(x, levels=3, codebook_size=6, seed=1)
    codes = quantizer.encode(x)
    by_hand = sum(quantizer.codebooks[level][codes[:, level]] for level in range(3))
    torch.testing.assert_close(quantizer.decode(codes), by_hand)
    torch.testing.assert_close(quantizer.decode(codes[:, :1]), quantizer.codebooks[0][codes[:, 0]])


@pytest.mark.parametrize("seed", range(3))
def test_kmeans_reaches_a_fixed_point_and_sklearns_objective(seed):
    x = clustered(seed).double()
    centroids = kmeans(x, 8, iterations=100, generator=torch.Generator().manual_seed(seed))
    assign = nearest_centroid(x, centroids)
    for k in assign.unique():
        torch.testing.assert_close(centroids[k], x[assign == k].mean(0))  # Lloyd's fixed point: each centroid is its mean
    ours = float((x - centroids[assign]).pow(2).sum())
    reference = KMeans(8, n_init=10, random_state=seed).fit(x.numpy()).inertia_
    assert ours <= 1.25 * reference, (ours, reference)


def test_the_same_seed_gives_the_same_codebooks_and_another_seed_others():
    x = clustered(2)
    a, b, c = (fit_residual_quantizer(x, levels=2, codebook_size=8, seed=s) for s in (0, 0, 1))
    assert all(torch.equal(p, q) for p, q in zip(a.codebooks, b.codebooks))
    assert not all(torch.equal(p, q) for p, q in zip(a.codebooks, c.codebooks))


@pytest.mark.parametrize("seed", range(4))
def test_codes_are_unique_after_disambiguation(seed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(3, (60, 2), generator=g)  # 9 possible codes for 60 items: many collisions
    full = add_disambiguation(codes)
    assert full.shape == (60, 3) and torch.equal(full[:, :2], codes)
    assert torch.unique(full, dim=0).shape[0] == 60
    for code in torch.unique(codes, dim=0):  # the items sharing a code get 0, 1, 2, ... in row order
        rows = (codes == code).all(1).nonzero()[:, 0]
        assert full[rows, 2].tolist() == list(range(len(rows)))


def test_code_stats_by_hand():
    codes = torch.tensor([[0, 1], [0, 1], [2, 1], [3, 0], [0, 1]])
    stats = code_stats(codes)
    assert stats.collision_rate == pytest.approx(3 / 5)  # three items share [0, 1]
    assert stats.distinct_codes == 3 and stats.used_per_level == (3, 2) and stats.max_disambiguation == 3
    assert add_disambiguation(codes)[:, 2].max() + 1 == stats.max_disambiguation


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(0, 4), "empty catalogue"),
    (torch.zeros(5), "float tensor (N, D)"),
    (torch.zeros(5, 3, dtype=torch.long), "float tensor (N, D)"),
    (torch.tensor([[0.0, float("nan")]]), "NaN"),
    ([[0.0, 1.0]], "float tensor (N, D)"),
])
def test_bad_embeddings_get_a_clear_error(bad, message):
    with pytest.raises(ValueError, match="embeddings"):
        fit_residual_quantizer(bad, levels=2, codebook_size=4)
    with pytest.raises(ValueError) as error:
        fit_residual_quantizer(bad, levels=2, codebook_size=4)
    assert message in str(error.value)


@pytest.mark.parametrize("levels, size", [(0, 4), (2, 0), (True, 4), (2.0, 4), (-1, 4)])
def test_bad_levels_or_codebook_sizes_get_a_clear_error(levels, size):
    with pytest.raises(ValueError, match=r"must be an int >= 1"):
        fit_residual_quantizer(torch.randn(10, 3), levels=levels, codebook_size=size)


def test_bad_codes_get_a_clear_error():
    quantizer = fit_residual_quantizer(torch.randn(20, 3), levels=2, codebook_size=4)
    with pytest.raises(ValueError, match=r"l <= L = 2"):
        quantizer.decode(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        quantizer.decode(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="3-dimensional"):
        quantizer.encode(torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"codebook must be \(K, D = 3\)"):
        quantize_level(torch.randn(4, 3), torch.randn(2, 5))
    with pytest.raises(ValueError, match="non-empty integer tensor"):
        add_disambiguation(torch.zeros(0, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="non-empty integer tensor"):
        add_disambiguation(torch.zeros(3, 2))


def test_content_vectors_are_three_unit_length_parts_of_the_right_sizes():
    from course_lib.data.item_features import MultimodalFeatures, content_vectors

    g = torch.Generator().manual_seed(0)
    images = torch.rand(7, 3, 8, 8, generator=g)  # 6 items + the PAD_ID row
    tokens = torch.tensor([[0, 0, 0], [1, 2, 2], [3, 0, 0], [1, 1, 1], [4, 2, 0], [2, 3, 4], [1, 0, 0]])
    price = torch.tensor([0, 0, 1, 2, 1, 0, 2])
    vectors = content_vectors(MultimodalFeatures(images, tokens, price), vocabulary_size=5, image_cells=2)
    assert vectors.shape == (6, 5 + 3 * 4 + 3)
    words, pictures, prices = vectors[:, :5], vectors[:, 5:17], vectors[:, 17:]
    torch.testing.assert_close(words.norm(dim=1), torch.ones(6))
    torch.testing.assert_close(prices.norm(dim=1), torch.ones(6))
    assert torch.equal(words[0] > 0, torch.tensor([False, True, True, False, False]))  # token 0 (padding) is no word
    assert words[0, 2] == pytest.approx(2 * words[0, 1])  # counts: token 2 appears twice in item 1's text
    assert prices.argmax(1).tolist() == price[1:].tolist()
    pooled = torch.nn.functional.adaptive_avg_pool2d(images[1:], 2).flatten(1)
    torch.testing.assert_close(pictures, torch.nn.functional.normalize(pooled - pooled.mean(0), dim=1))
    with pytest.raises(TypeError, match="MultimodalFeatures"):
        content_vectors(torch.zeros(3, 4), vocabulary_size=5)
