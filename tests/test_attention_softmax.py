"""softmax and masked_softmax against torch, with overflow, temperature and masking cases."""

import pytest
import torch

from course_lib.attention import masked_softmax, softmax


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_softmax_matches_torch(seed, dim):
    x = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 5
    torch.testing.assert_close(softmax(x, dim=dim), torch.softmax(x, dim=dim))


def test_softmax_is_stable_for_huge_scores():
    x = torch.tensor([1000.0, 1001.0, 1002.0])
    assert torch.isnan(torch.exp(x) / torch.exp(x).sum()).all()  # the naive form breaks
    torch.testing.assert_close(softmax(x), torch.softmax(x - 1000.0, dim=-1))


def test_temperature_limits():
    x = torch.tensor([1.0, 3.0, 2.0])
    torch.testing.assert_close(softmax(x, temperature=2.0), torch.softmax(x / 2.0, dim=-1))
    assert softmax(x, temperature=1e-3).argmax() == 1 and softmax(x, temperature=1e-3).max() > 0.999
    torch.testing.assert_close(softmax(x, temperature=1e6), torch.full((3,), 1 / 3), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="temperature"):
        softmax(x, temperature=0.0)


def test_softmax_over_size_one_dimension_is_all_ones():
    """The source articles' mistake: normalising over an axis of size 1."""
    scores = torch.randn(5, 1)
    assert (softmax(scores, dim=-1) == 1).all()
    assert softmax(scores, dim=0).sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masked_softmax_matches_torch_where_defined(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(3, 4, 7, generator=gen, dtype=torch.float64)
    mask = torch.rand(3, 4, 7, generator=gen) > 0.5
    mask[..., 2] = True
    expected = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    torch.testing.assert_close(masked_softmax(scores, mask), expected)


def test_masked_softmax_fully_masked_row_is_zero_not_nan_or_uniform():
    scores = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    weights = masked_softmax(scores, mask)
    assert (weights[1] == 0).all()
    # what the traps give instead
    assert torch.isnan(torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)[1]).all()
    torch.testing.assert_close(
        torch.softmax(scores.masked_fill(~mask, -1e9), -1)[1], torch.full((3,), 1 / 3)
    )
    (weights * torch.randn(2, 3)).sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_masked_softmax_with_none_is_plain_softmax():
    x = torch.randn(2, 3)
    torch.testing.assert_close(masked_softmax(x, None), torch.softmax(x, -1))


def test_softmax_rejects_integers():
    with pytest.raises(TypeError, match="floating-point"):
        softmax(torch.tensor([1, 2, 3]))
