"""Property-based tests (hypothesis): random shapes, ties, padding, NaN/inf and empty inputs.

Each property states the defined result, or the error expected, for every input hypothesis
draws, and checks it against a brute-force reference written here in plain Python or against
torch. ``derandomize=True`` makes every run draw the same examples, so CI never flakes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import PAD_ID
from course_lib.attention import causal_mask, masked_softmax, padding_mask, scaled_dot_product_attention, softmax
from course_lib.data import evaluation_batches, temporal_leave_one_out, training_windows
from course_lib.metrics import hit_rate, mrr, ndcg, target_ranks

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)

# ---------------------------------------------------------------- inputs

events = st.lists(  # (user, item, timestamp); small ranges give many ties in time and repeated items
    st.tuples(st.integers(0, 4), st.integers(1, 9), st.integers(0, 5)), min_size=1, max_size=40
)


def frame_of(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


@st.composite
def scores_and_targets(draw):
    """(B, I) scores with many ties (small integers, sometimes ±inf), targets in 1..I, excluded ids."""
    batch, items = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    values = st.one_of(st.integers(-2, 2).map(float), st.sampled_from([math.inf, -math.inf]))
    scores = torch.tensor(draw(st.lists(st.lists(values, min_size=items, max_size=items), min_size=batch, max_size=batch)))
    targets = torch.tensor(draw(st.lists(st.integers(1, items), min_size=batch, max_size=batch)))
    width = draw(st.integers(0, items))
    excluded = torch.tensor(draw(st.lists(st.lists(st.integers(0, items), min_size=width, max_size=width),
                                          min_size=batch, max_size=batch)), dtype=torch.long).reshape(batch, width)
    return scores, targets, excluded


@st.composite
def attention_inputs(draw):
    """q (B, Lq, D), k and v (B, Lk, D) with Lk = 0 allowed, large scales included, and a random mask (B, Lq, Lk)."""
    batch, lq, lk, d = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(0, 5)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([0.1, 1.0, 30.0]))  # 30: scores of several hundred, where a naive exp overflows
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, n, d, generator=g) * scale for n in (lq, lk, lk))
    mask = torch.rand(batch, lq, lk, generator=g) < draw(st.sampled_from([0.0, 0.5, 1.0]))
    return q, k, v, mask


# ---------------------------------------------------------------- the split


@PROPERTY
@given(events)
def test_split_orders_each_user_by_time_then_file_row_and_keeps_every_event(rows):
    split = temporal_leave_one_out(frame_of(rows))
    assert sum(len(s) for s in split.sequences) == len(rows)
    assert split.num_items == len({item for _, item, _ in rows})
    for index, user in enumerate(split.user_ids):
        mine = [(t, row, item) for row, (u, item, t) in enumerate(rows) if u == user]
        expected = [item for _, _, item in sorted(mine)]  # by time, ties in file order
        assert split.item_ids[split.sequences[index]].tolist() == expected
        assert np.all(np.diff(split.times[index]) >= 0)


@PROPERTY
@given(events, st.integers(1, 6))
def test_evaluation_batches_hold_out_the_last_two_events_right_aligned(rows, max_len):
    split = temporal_leave_one_out(frame_of(rows))
    if not split.evaluable.any():
        with pytest.raises(ValueError, match="fewer than 3 events"):
            evaluation_batches(split, "test", users=[0], max_len=max_len)
        return
    for stage, cut in (("valid", 2), ("test", 1)):
        for batch in evaluation_batches(split, stage, max_len=max_len, batch_size=2):
            for row, user in enumerate(batch.users.tolist()):
                sequence = split.sequences[user]
                given_events = sequence[: len(sequence) - cut]
                assert int(batch.targets[row]) == sequence[-cut]
                history = batch.history[row]
                real = history[history != PAD_ID].tolist()
                assert real == given_events[-max_len:].tolist(), "the newest max_len input events, oldest first"
                assert bool((history[len(history) - len(real):] != PAD_ID).all()), "padding only on the left"
                seen = batch.seen[row]
                assert sorted(seen[seen != PAD_ID].tolist()) == sorted(given_events.tolist())


@PROPERTY
@given(events, st.integers(1, 5), st.integers(1, 5))
def test_training_windows_pair_each_event_with_the_next_training_event_only(rows, max_len, stride):
    split = temporal_leave_one_out(frame_of(rows))
    windows = training_windows(split, max_len=max_len, stride=stride)
    targets_of = {user: set() for user in range(split.num_users)}
    for user, history, targets in zip(windows.users.tolist(), windows.history, windows.seq_targets):
        train = split.train_sequence(user).tolist()
        pairs = set(zip(train[:-1], train[1:]))
        keep = targets != PAD_ID
        assert bool(keep.any()) and bool((history[keep] != PAD_ID).all()) and history[-1] != PAD_ID
        assert {(int(a), int(b)) for a, b in zip(history[keep], targets[keep])} <= pairs
        targets_of[user] |= {int(t) for t in targets[keep]}
    for user in range(split.num_users):  # every training event after the first is some window's target
        train = split.train_sequence(user).tolist()
        assert targets_of[user] == set(train[1:])


@PROPERTY
@given(events, st.sampled_from(["user", "item", "timestamp"]), st.data())
def test_split_refuses_any_missing_value(rows, column, data):
    frame = frame_of(rows).astype(float)
    frame.loc[data.draw(st.integers(0, len(rows) - 1)), column] = np.nan
    with pytest.raises(ValueError, match=f"interactions\\['{column}'\\] is missing"):
        temporal_leave_one_out(frame)


# ---------------------------------------------------------------- the evaluation


@PROPERTY
@given(scores_and_targets())
def test_target_ranks_count_the_ranked_items_that_tie_or_beat_the_target(case):
    scores, targets, excluded = case
    ranks = target_ranks(scores, targets, excluded)
    optimistic = target_ranks(scores, targets, excluded, ties="optimistic")
    for b in range(len(targets)):
        target = int(targets[b])
        removed = set(excluded[b].tolist()) - {PAD_ID, target}
        others = [i for i in range(1, scores.shape[1] + 1) if i != target and i not in removed]
        mine = scores[b, target - 1]
        assert int(ranks[b]) == 1 + sum(bool(scores[b, i - 1] >= mine) for i in others)
        assert int(optimistic[b]) == 1 + sum(bool(scores[b, i - 1] > mine) for i in others)
    k = 3
    assert 0.0 <= ndcg(ranks, k) <= hit_rate(ranks, k) <= 1.0
    assert 0.0 < mrr(ranks) <= 1.0


@PROPERTY
@given(scores_and_targets(), st.data())
def test_target_ranks_refuse_nan_scores(case, data):
    scores, targets, _ = case
    b, i = data.draw(st.integers(0, scores.shape[0] - 1)), data.draw(st.integers(0, scores.shape[1] - 1))
    scores[b, i] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(scores, targets)


# ---------------------------------------------------------------- masks and attention


@PROPERTY
@given(attention_inputs())
def test_masked_softmax_is_torch_softmax_over_the_allowed_keys_and_zero_elsewhere(case):
    q, k, _, mask = case
    scores = q @ k.transpose(1, 2)  # (B, Lq, Lk)
    scores = scores.masked_fill(~mask & (torch.rand(scores.shape) < 0.5), math.nan)  # masked keys may hold anything
    weights = masked_softmax(scores, mask)
    assert weights.shape == scores.shape and torch.isfinite(weights).all()
    assert torch.all(weights[~mask] == 0)
    allowed = mask.any(-1)  # (B, Lq)
    torch.testing.assert_close(weights.sum(-1), allowed.to(weights.dtype))
    reference = torch.softmax(scores.masked_fill(~mask, -math.inf), dim=-1)  # NaN on rows with no allowed key
    torch.testing.assert_close(weights[allowed], reference[allowed])


@PROPERTY
@given(st.lists(st.one_of(st.floats(-50, 50), st.sampled_from([math.nan, math.inf, -math.inf])), min_size=0, max_size=6))
def test_softmax_agrees_with_torch_on_any_row_including_nan_inf_and_empty(values):
    scores = torch.tensor(values, dtype=torch.float32).reshape(1, -1)
    torch.testing.assert_close(softmax(scores), torch.softmax(scores, dim=-1), equal_nan=True)


@PROPERTY
@given(attention_inputs())
def test_attention_agrees_with_torch_and_gives_zeros_where_nothing_may_be_attended(case):
    q, k, v, mask = case
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, weights @ v)
    allowed = mask.any(-1)  # (B, Lq)
    assert torch.all(out[~allowed] == 0) and torch.isfinite(out).all()
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out[allowed], reference[allowed], rtol=1e-4, atol=1e-4)


@PROPERTY
@given(st.integers(1, 6), st.integers(0, 4), st.lists(st.integers(0, 5), min_size=1, max_size=8))
def test_causal_and_padding_masks_allow_exactly_what_they_promise(length_q, extra, items):
    length_k = length_q + extra
    mask = causal_mask(length_q, length_k)
    for i in range(length_q):
        for j in range(length_k):
            assert bool(mask[i, j]) == (j <= i + extra), "query i is position i + extra of the keys"
    ids = torch.tensor([items])
    assert padding_mask(ids).shape == (1, 1, 1, len(items))
    assert padding_mask(ids)[0, 0, 0].tolist() == [item != PAD_ID for item in items]
