"""Streaming SASRec: the key/value cache equals full recomputation; SASRec's own positions cannot stream."""

from __future__ import annotations

import pytest
import torch
from factories import history_batch

from course_lib import PAD_ID
from course_lib.data.time_buckets import TimeBucketConfig
from course_lib.layers import positions_from_newest, positions_from_oldest
from course_lib.models.item_encoders import lookup
from course_lib.models.sasrec import SASRec, SASRecConfig, StreamingSASRec
from course_lib.models.sasrec_streaming import empty_cache, extend, step

I = 30  # catalogue size of the toy tests


def make_model(seed: int, *, max_len: int = 16, n_layers: int = 2, norm_first: bool = True, cls=StreamingSASRec):
    torch.manual_seed(seed)
    config = SASRecConfig(I, max_len=max_len, d_model=16, n_heads=2, n_layers=n_layers, dropout=0.3, norm_first=norm_first)
    return cls(config).eval()


def random_history(seed: int, batch: int, length: int, pads: list[int]) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, I + 1, (batch, length), generator=g)
    for row, pad in enumerate(pads):
        history[row, :pad] = PAD_ID  # left padding, a different amount per user
    return history


def test_positions_count_from_the_oldest_real_event():
    history = torch.tensor([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]])
    assert positions_from_oldest(history != PAD_ID).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    assert positions_from_newest(5).tolist() == [4, 3, 2, 1, 0]
    model = make_model(0)
    assert model.config.positions == "oldest" and model.encoder.slot_positions(history).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("length", [1, 6, 16])
def test_step_by_step_equals_full_recomputation_with_padding(seed, norm_first, length):
    model = make_model(seed, norm_first=norm_first)
    history = random_history(seed, 3, length, pads=[0, length // 2, length - 1])
    with torch.no_grad():
        full = model(history)  # (B, L, D)
        cache = empty_cache(model, 3)
        for t in range(length):
            hidden, cache = step(model, history[:, t], cache)  # (B, D)
            torch.testing.assert_close(hidden, full[:, t])
    assert cache.length == length
    assert torch.equal(cache.real, history != PAD_ID)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("split_at", [0, 3, 9])
def test_prefill_then_stream_equals_recomputation(seed, split_at):
    model = make_model(seed, n_layers=3)
    history = random_history(seed, 4, 12, pads=[0, 2, 5, 11])
    with torch.no_grad():
        full = model(history)
        prefix, cache = extend(model, history[:, :split_at], empty_cache(model, 4))
        rest, cache = extend(model, history[:, split_at:], cache)
    torch.testing.assert_close(torch.cat([prefix, rest], dim=1), full)
    for layer in range(3):
        assert cache.keys[layer].shape == (4, 2, 12, 8)


@pytest.mark.parametrize("seed", [0, 1])
def test_left_padding_changes_nothing_for_the_streaming_model(seed):
    model = make_model(seed)
    history = random_history(seed, 2, 8, pads=[0, 0])
    padded = torch.cat([torch.zeros(2, 5, dtype=torch.long), history], dim=1)  # same events, 5 PAD_ID slots first
    with torch.no_grad():
        torch.testing.assert_close(model(padded)[:, 5:], model(history))


@pytest.mark.parametrize("seed", [0, 1])
def test_scores_from_the_stream_equal_score_all(seed):
    model = make_model(seed)
    history = random_history(seed, 3, 10, pads=[0, 4, 7])
    batch = history_batch(history)
    with torch.no_grad():
        hidden, _ = extend(model, history, empty_cache(model, 3))
        torch.testing.assert_close(model.item_scores(hidden[:, -1]), model.score_all(batch))


@pytest.mark.parametrize("seed", [0, 1])
def test_newest_anchored_sasrec_changes_every_cached_key(seed):
    """Why SASRec itself cannot use a cache: appending an event moves every position vector."""
    model = make_model(seed, cls=SASRec)
    history = random_history(seed, 1, 8, pads=[0])
    block = model.encoder.transformer.blocks[0]

    def first_layer_keys(h):
        x = model.encoder.positions(model.item_encoder(h), positions=positions_from_newest(h.shape[1]))
        return block.attention.k_proj(block.norm1(x))  # (1, L, D)

    with torch.no_grad():
        before = first_layer_keys(history[:, :7])
        after = first_layer_keys(history)[:, :7]  # the same 7 events after one more arrived
        assert not torch.allclose(before, after, atol=1e-4)
        streaming = make_model(seed)  # same seed = same parameters, oldest-anchored positions
        table = streaming.item_encoder.table()
        x_short = streaming.encoder.positions(lookup(table, history[:, :7]), positions=positions_from_oldest(history[:, :7] != PAD_ID))
        x_long = streaming.encoder.positions(lookup(table, history), positions=positions_from_oldest(history != PAD_ID))
        torch.testing.assert_close(x_short, x_long[:, :7])
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), streaming.state_dict().values()))


def test_cache_is_not_modified_and_errors_are_clear():
    model = make_model(0, max_len=4)
    history = random_history(0, 2, 3, pads=[0, 1])
    with torch.no_grad():
        _, cache = extend(model, history, empty_cache(model, 2))
        keys_before = cache.keys[0].clone()
        _, bigger = step(model, torch.tensor([3, 4]), cache)
    assert torch.equal(cache.keys[0], keys_before) and cache.length == 3 and bigger.length == 4
    assert bigger.nbytes() == 2 * 2 * (2 * 2 * 4 * 8) * 4  # keys+values x layers x (B H T Dh) x 4 bytes
    with pytest.raises(ValueError, match="max_len"):
        step(model, torch.tensor([3, 4]), bigger)
    with pytest.raises(TypeError, match="StreamingSASRec"):
        extend(make_model(0, cls=SASRec), history, empty_cache(model, 2))
    with pytest.raises(TypeError, match="time-gap"):
        timed = SASRec(SASRecConfig(I, max_len=4, d_model=16, positions="oldest", time_gaps=TimeBucketConfig()))
        extend(timed.eval(), history, empty_cache(model, 2))
    with pytest.raises(RuntimeError, match="eval"):
        extend(model.train(), history, empty_cache(model, 2))
