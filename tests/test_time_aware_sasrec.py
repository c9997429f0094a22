"""Time-aware SASRec (SASRec with time-gap buckets): reads the gaps, stays causal and padding-invariant."""

from __future__ import annotations

import pytest
import torch
from factories import history_batch

from course_lib import PAD_ID
from course_lib.data.time_buckets import NO_GAP, TimeBucketConfig
from course_lib.metrics import evaluate
from course_lib.models.sasrec import SASRec, SASRecConfig

I = 30  # catalogue size of the toy tests


def make_model(seed: int, *, max_len: int = 12, n_layers: int = 2) -> SASRec:
    torch.manual_seed(seed)
    config = SASRecConfig(I, max_len=max_len, d_model=16, n_heads=2, n_layers=n_layers, dropout=0.1,
                          time_gaps=TimeBucketConfig(unit_seconds=60.0, num_buckets=8))
    model = SASRec(config)
    with torch.no_grad():  # make the time vectors as large as the item vectors, so that they matter
        model.encoder.time_gaps.weight[1:].normal_(std=1.0)
    return model.eval()


def random_case(seed: int, batch: int, length: int, pad_left: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, I + 1, (batch, length), generator=g)
    gaps = torch.randint(0, 3_000, (batch, length), generator=g)  # < 3,780 s: below the last bucket
    times = 1_000_000 + torch.cumsum(gaps, dim=1)
    history[:, :pad_left] = PAD_ID
    times[:, :pad_left] = 0
    return history, times


def test_is_a_sasrec_with_a_time_table():
    model = make_model(0)
    assert isinstance(model, SASRec) and SASRec(SASRecConfig(I)).encoder.time_gaps is None  # off by default
    assert model.encoder.time_gaps.weight.shape == (8, 16)
    assert torch.equal(model.encoder.time_gaps.weight[NO_GAP], torch.zeros(16))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_changing_a_later_item_or_time_leaves_earlier_positions_unchanged(seed):
    model = make_model(seed)
    history, times = random_case(seed, 4, 12, pad_left=3)
    with torch.no_grad():
        before = model.item_scores(model(history, times))  # (B, L, I)
        for cut in (4, 7, 11):
            changed_item = history.clone()
            changed_item[:, cut] = (changed_item[:, cut] % I) + 1
            changed_time = times.clone()
            changed_time[:, cut:] += 10**6  # the event at `cut` (and every later one) happens much later
            for h, t in ((changed_item, times), (history, changed_time)):
                after = model.item_scores(model(h, t))
                torch.testing.assert_close(after[:, :cut], before[:, :cut])
                assert not torch.allclose(after[:, cut], before[:, cut]), "the changed position itself must change"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_left_padding_does_not_change_the_output(seed):
    model = make_model(seed, max_len=16)
    history, times = random_case(seed, 3, 9)
    padded_history = torch.cat([torch.full((3, 7), PAD_ID), history], dim=1)
    padded_times = torch.cat([torch.zeros(3, 7, dtype=torch.long), times], dim=1)
    with torch.no_grad():
        short = model(history, times)
        long = model(padded_history, padded_times)
    torch.testing.assert_close(long[:, 7:], short, atol=1e-5, rtol=1e-5)


def test_times_matter_and_shifting_all_times_does_not():
    model = make_model(3)
    history, times = random_case(3, 2, 10)
    with torch.no_grad():
        base = model(history, times)
        shifted = model(history, times + 123_456)  # only gaps are read, never absolute times
        bursty = model(history, times[:, :1].expand_as(times).clone())  # every gap 0
    torch.testing.assert_close(shifted, base)
    assert not torch.allclose(bursty, base)


def test_gap_buckets_by_hand():
    model = make_model(0)
    history = torch.tensor([[PAD_ID, 5, 6, 7, 8]])
    times = torch.tensor([[0, 1000, 1030, 1200, 1000 + 86_400]])  # gaps -, -, 30 s, 170 s, ~1 day
    # buckets of 60 s units: [0, 60) -> 1, [60, 180) -> 2, ..., >= 63 units -> 7 (the last of 8)
    assert torch.equal(model.encoder.gap_buckets(history, times), torch.tensor([[NO_GAP, NO_GAP, 1, 2, 7]]))


def test_interface_loss_and_score_all_agree_with_the_forward_pass():
    model = make_model(4)
    history, times = random_case(4, 3, 12, pad_left=2)
    targets = torch.tensor([1, 5, 9])
    batch = history_batch(history, times, targets=targets, seen=history)
    with torch.no_grad():
        hidden = model(history, times)
        expected = hidden[:, -1] @ model.item_encoder.weight[1:].T
        torch.testing.assert_close(model.score_all(batch), expected)
        torch.testing.assert_close(model.score(batch, targets[:, None]), expected.gather(1, targets[:, None] - 1))
        loss = model.loss(batch)
        torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(expected, targets - 1))
        seq_targets = torch.roll(history, -1, dims=1)
        seq_targets[:, -1] = targets
        seq_targets[history == PAD_ID] = PAD_ID
        seq_batch = history_batch(history, times, seq_targets=seq_targets)
        keep = seq_targets != PAD_ID
        by_hand = torch.nn.functional.cross_entropy(model.item_scores(hidden)[keep], seq_targets[keep] - 1)
        torch.testing.assert_close(model.loss(seq_batch), by_hand)
    # random histories may hold their own target: rank every item (nothing removed), pessimistic on ties
    ranks = evaluate(model, [batch], device="cpu", repeats="rank_seen").ranks
    by_hand = (expected >= expected.gather(1, targets[:, None] - 1)).sum(1)  # (B,) items scored at least as high
    assert ranks.tolist() == by_hand.tolist()


def test_errors():
    model = make_model(0)
    history, times = random_case(0, 2, 6)
    with pytest.raises(ValueError, match="pass history_times"):
        model(history)
    with pytest.raises(ValueError, match="history_times must match history"):
        model(history, times[:, :4])
    with pytest.raises(ValueError, match="non-decreasing"):
        model(history, times.flip(1))
    with pytest.raises(ValueError, match="max_len"):
        model(torch.ones(1, 20, dtype=torch.long), torch.ones(1, 20, dtype=torch.long))
    with pytest.raises(ValueError, match="seq_targets"):
        model.loss(history_batch(history, times))
