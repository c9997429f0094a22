"""Log-scale time buckets: bucket edges by hand, gaps to the previous event / a reference, errors."""

from __future__ import annotations

import pytest
import torch

from course_lib import PAD_ID
from course_lib.data.time_buckets import (
    NO_GAP,
    TimeBucketConfig,
    gaps_to_previous,
    gaps_to_reference,
    log_time_buckets,
)


def test_bucket_edges_by_hand():
    config = TimeBucketConfig(unit_seconds=60.0, num_buckets=6)  # gap buckets 1..5
    # bucket 1: [0, 60), 2: [60, 180), 3: [180, 420), 4: [420, 900), 5: [900, inf)
    gaps = torch.tensor([0, 59, 60, 179, 180, 419, 420, 899, 900, 10**9])
    expected = torch.tensor([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    assert torch.equal(log_time_buckets(gaps, config=config), expected)
    assert config.bucket_starts() == [0.0, 60.0, 180.0, 420.0, 900.0]


@pytest.mark.parametrize("unit", [1.0, 60.0, 3600.0])
@pytest.mark.parametrize("num_buckets", [2, 5, 20])
def test_each_bucket_starts_where_bucket_starts_says(unit, num_buckets):
    config = TimeBucketConfig(unit_seconds=unit, num_buckets=num_buckets)
    starts = torch.tensor(config.bucket_starts(), dtype=torch.float64)
    at_start = log_time_buckets(starts, config=config)
    assert torch.equal(at_start, torch.arange(1, num_buckets))
    just_before = log_time_buckets((starts[1:] - 1e-3).clamp_min(0), config=config)
    assert torch.equal(just_before, torch.arange(1, num_buckets - 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("unit", "num_buckets"), [(60.0, 20), (1.0, 8), (3600.0, 12), (7.5, 30)])
def test_buckets_match_the_log_formula(seed, unit, num_buckets):
    config = TimeBucketConfig(unit_seconds=unit, num_buckets=num_buckets)
    g = torch.Generator().manual_seed(seed)
    gaps = torch.cat([torch.randint(0, 10**9, (300,), generator=g), torch.randint(0, 2_000, (300,), generator=g)])
    expected = 1 + torch.floor(torch.log2(1 + gaps.double() / unit)).clamp(max=num_buckets - 2).long()
    assert torch.equal(log_time_buckets(gaps, config=config), expected)  # integer seconds
    assert torch.equal(log_time_buckets(gaps.double() + 0.25, config=config),
                       1 + torch.floor(torch.log2(1 + (gaps.double() + 0.25) / unit)).clamp(max=num_buckets - 2).long())


def test_buckets_are_monotone_and_in_range():
    config = TimeBucketConfig(unit_seconds=30.0, num_buckets=12)
    gaps = torch.sort(torch.randint(0, 10**8, (500,), generator=torch.Generator().manual_seed(0))).values
    buckets = log_time_buckets(gaps, config=config)
    assert (buckets[1:] >= buckets[:-1]).all()
    assert buckets.min() >= 1 and buckets.max() <= config.num_buckets - 1


def test_invalid_entries_get_no_gap():
    gaps = torch.tensor([[5, -7, 100]])  # the negative entry is masked out, so it is never checked
    valid = torch.tensor([[True, False, True]])
    assert torch.equal(log_time_buckets(gaps, valid=valid), torch.tensor([[1, NO_GAP, 2]]))


def test_gaps_to_previous_by_hand():
    history = torch.tensor([[PAD_ID, PAD_ID, 7, 8, 9], [1, 2, 3, 4, 5]])
    times = torch.tensor([[0, 0, 100, 130, 1000], [10, 10, 20, 50, 50]])
    gaps, valid = gaps_to_previous(times, history != PAD_ID)
    assert torch.equal(gaps, torch.tensor([[0, 0, 0, 30, 870], [0, 0, 10, 30, 0]]))
    assert torch.equal(valid, torch.tensor([[False, False, False, True, True], [False, True, True, True, True]]))


def test_gaps_to_previous_do_not_depend_on_padding_amount():
    times = torch.tensor([[100, 160, 400, 5000]])
    short_gaps, _ = gaps_to_previous(times, torch.ones(1, 4, dtype=torch.bool))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), times], dim=1)
    mask = torch.tensor([[False] * 3 + [True] * 4])
    long_gaps, _ = gaps_to_previous(padded, mask)
    assert torch.equal(long_gaps[:, 3:], short_gaps)


def test_gaps_to_previous_are_causal():
    times = torch.tensor([[100, 160, 400, 5000, 6000]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    before, _ = gaps_to_previous(times, mask)
    later = times.clone()
    later[0, 3] = 5500  # move a later event: gaps of earlier positions stay
    after, _ = gaps_to_previous(later, mask)
    assert torch.equal(after[:, :3], before[:, :3])


def test_gaps_to_reference_newest_and_given():
    history = torch.tensor([[PAD_ID, 4, 5, 6]])
    times = torch.tensor([[0, 100, 250, 1000]])
    mask = history != PAD_ID
    assert torch.equal(gaps_to_reference(times, mask), torch.tensor([[0, 900, 750, 0]]))
    assert torch.equal(gaps_to_reference(times, mask, torch.tensor([1060])), torch.tensor([[0, 960, 810, 60]]))
    # not causal: moving the newest event changes the gap of every earlier event
    later = times.clone()
    later[0, 3] = 2000
    assert not torch.equal(gaps_to_reference(later, mask)[:, 1:3], gaps_to_reference(times, mask)[:, 1:3])


def test_empty_row_gives_zero_gaps():
    times = torch.zeros(1, 3, dtype=torch.long)
    mask = torch.zeros(1, 3, dtype=torch.bool)
    assert torch.equal(gaps_to_reference(times, mask), torch.zeros(1, 3, dtype=torch.long))
    gaps, valid = gaps_to_previous(times, mask)
    assert not valid.any() and torch.equal(gaps, torch.zeros(1, 3, dtype=torch.long))


def test_errors_name_what_was_expected():
    mask = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=">= 0 seconds"):
        log_time_buckets(torch.tensor([1, -5]))
    with pytest.raises(ValueError, match="non-decreasing"):
        gaps_to_previous(torch.tensor([[10, 5, 20]]), mask)
    with pytest.raises(TypeError, match="integer unix seconds"):
        gaps_to_previous(torch.tensor([[1.0, 2.0, 3.0]]), mask)
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        gaps_to_previous(torch.tensor([1, 2, 3]), mask)
    with pytest.raises(ValueError, match="history_mask must be a bool"):
        gaps_to_previous(torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="reference must be one time per row"):
        gaps_to_reference(torch.tensor([[1, 2, 3]]), mask, torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="later than its row's reference"):
        gaps_to_reference(torch.tensor([[1, 2, 3]]), mask, torch.tensor([2]))
    with pytest.raises(ValueError, match="unit_seconds must be > 0"):
        TimeBucketConfig(unit_seconds=0.0)
    with pytest.raises(ValueError, match="num_buckets must be an int >= 2"):
        TimeBucketConfig(num_buckets=1)
    with pytest.raises(TypeError, match="integer or float"):
        log_time_buckets(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="config must be a TimeBucketConfig"):
        log_time_buckets(torch.tensor([1]), config=60.0)
