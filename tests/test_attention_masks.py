"""Mask helpers: shapes, the True = may attend convention, and clear errors."""

import pytest
import torch

from course_lib import PAD_ID
from course_lib.attention import causal_mask, combine_masks, lengths_mask, padding_mask


def test_causal_mask_is_lower_triangular():
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3), expected)


def test_causal_mask_for_cached_keys_offsets_the_diagonal():
    mask = causal_mask(2, 4)
    assert torch.equal(mask, torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool))
    torch.testing.assert_close(causal_mask(4, 4), causal_mask(4))


@pytest.mark.parametrize("args", [(0,), (3, 2), (2.5,), (True,)])
def test_causal_mask_rejects_bad_lengths(args):
    with pytest.raises(ValueError, match="causal_mask"):
        causal_mask(*args)


def test_padding_mask_marks_real_items():
    items = torch.tensor([[0, 0, 5, 7], [3, 4, 9, 2]])
    mask = padding_mask(items)
    assert mask.shape == (2, 1, 1, 4) and mask.dtype == torch.bool
    assert torch.equal(mask[:, 0, 0], items != PAD_ID)


def test_padding_mask_errors():
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        padding_mask(torch.tensor([1, 2, 0]))
    with pytest.raises(TypeError, match="integer"):
        padding_mask(torch.zeros(2, 3))


def test_lengths_mask_agrees_with_padding_mask():
    items = torch.tensor([[4, 2, 0, 0], [1, 0, 0, 0], [7, 7, 7, 7]])
    assert torch.equal(lengths_mask(torch.tensor([2, 1, 4]), 4), padding_mask(items))
    with pytest.raises(ValueError, match="0..4"):
        lengths_mask(torch.tensor([5]), 4)


def test_combine_masks_is_logical_and_with_broadcasting():
    items = torch.tensor([[0, 3, 4]])
    combined = combine_masks(causal_mask(3), None, padding_mask(items))
    assert combined.shape == (1, 1, 3, 3)
    expected = torch.tensor([[0, 0, 0], [0, 1, 0], [0, 1, 1]], dtype=torch.bool)
    assert torch.equal(combined[0, 0], expected)
    assert combine_masks(None, None) is None
    with pytest.raises(TypeError, match="boolean"):
        combine_masks(torch.ones(2, 2))
