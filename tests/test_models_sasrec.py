"""SASRec: causality, padding invariance, the per-position loss, attention weights, the interface."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from factories import history_batch as as_batch
from factories import split_of, walk_split

from course_lib import PAD_ID
from course_lib.attention import padding_mask
from course_lib.bench import BenchData, BenchModel, Settings, Windows, build_gru, build_sasrec
from course_lib.data import evaluation_batches, training_windows
from course_lib.layers import positions_from_newest
from course_lib.models.gru import GRURecConfig
from course_lib.models.sasrec import SASRec, SASRecConfig, attention_by_distance
from course_lib.training import TrainConfig, fit

I = 30  # catalogue size of the toy tests


def make_model(seed: int, *, max_len: int = 12, n_layers: int = 2, norm_first: bool = True) -> SASRec:
    torch.manual_seed(seed)
    model = SASRec(SASRecConfig(I, max_len=max_len, d_model=16, n_heads=2, n_layers=n_layers, dropout=0.1, norm_first=norm_first))
    return model.eval()


def random_history(seed: int, batch: int, length: int, pad_left: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, I + 1, (batch, length), generator=g)
    history[:, :pad_left] = PAD_ID
    return history


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm_first", [True, False])
def test_changing_a_later_item_leaves_earlier_positions_unchanged(seed, norm_first):
    model = make_model(seed, norm_first=norm_first)
    history = random_history(seed, 4, 12, pad_left=3)
    with torch.no_grad():
        before = model.item_scores(model(history))  # (B, L, I)
        for cut in (4, 7, 11):
            changed = history.clone()
            changed[:, cut] = (changed[:, cut] % I) + 1  # a different real item at position `cut`
            after = model.item_scores(model(changed))
            torch.testing.assert_close(after[:, :cut], before[:, :cut])
            assert not torch.allclose(after[:, cut], before[:, cut]), "the changed position itself must change"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_of_an_early_output_never_reaches_later_inputs(seed):
    model = make_model(seed)
    history = random_history(seed, 2, 10)
    x = model.item_encoder(history).detach().requires_grad_(True)  # the history's item vectors, as leaves
    encoder = model.encoder
    hidden = encoder.transformer(encoder.positions(x, positions=positions_from_newest(10)), attn_mask=padding_mask(history))
    direction = torch.randn(hidden.shape[-1], generator=torch.Generator().manual_seed(seed))
    (hidden[:, 4] @ direction).sum().backward()  # not a plain sum: LayerNorm outputs sum to a constant
    assert x.grad[:, 5:].abs().max() == 0
    assert x.grad[:, :5].abs().max() > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padding_invariance(seed):
    """Scores of a history do not depend on how much padding precedes it, nor on other rows."""
    model = make_model(seed, max_len=16)
    history = random_history(seed, 3, 9)
    short = torch.cat([torch.full((3, 1), PAD_ID), history], dim=1)  # L = 10
    long = torch.cat([torch.full((3, 7), PAD_ID), history], dim=1)  # L = 16
    with torch.no_grad():
        scores_short = model.score_all(as_batch(short))
        scores_long = model.score_all(as_batch(long))
        torch.testing.assert_close(scores_short, scores_long)
        hidden_short, hidden_long = model(short)[:, 1:], model(long)[:, 7:]
        torch.testing.assert_close(hidden_short, hidden_long)
        # a user's scores do not depend on the other users in the batch
        alone = model.score_all(as_batch(short[:1]))
        torch.testing.assert_close(alone, scores_short[:1])


def test_padding_item_embedding_stays_zero_and_is_never_attended():
    model = make_model(0)
    history = random_history(0, 3, 12, pad_left=5)
    maps = model.attention(as_batch(history))
    weights = maps.layers  # (B, n_layers, H, L, L)
    assert weights.shape == (3, 2, 2, 12, 12)
    assert maps.history.shape == (3, 1, 12) and torch.equal(maps.history[:, 0], weights[:, -1].mean(1)[:, -1])
    assert weights[..., :5].abs().max() == 0, "padding keys get zero weight"
    assert weights[..., :5, :].abs().max() == 0, "padding queries have nothing to attend to"
    upper = torch.triu(torch.ones(12, 12, dtype=torch.bool), diagonal=1)
    assert weights[..., upper].abs().max() == 0, "no position attends to a later one"
    rows = weights[..., 5:, :].sum(-1)
    torch.testing.assert_close(rows, torch.ones_like(rows))
    assert not torch.isnan(model(torch.zeros(2, 12, dtype=torch.long))).any(), "an all-padding history gives no NaN"


@pytest.mark.parametrize("seed", [0, 1])
def test_loss_is_cross_entropy_at_every_target_position(seed):
    model = make_model(seed)
    history = random_history(seed, 4, 12, pad_left=2)
    seq_targets = random_history(seed + 10, 4, 12, pad_left=2)
    batch = as_batch(history, seq_targets=seq_targets)
    with torch.no_grad():
        logits = model.item_scores(model(history))  # (B, L, I)
        expected = F.cross_entropy(logits[:, 2:].reshape(-1, I), seq_targets[:, 2:].reshape(-1) - 1)
        torch.testing.assert_close(model.loss(batch), expected)
        # with one target per row (batch.targets) only the last position counts
        single = as_batch(history, targets=seq_targets[:, -1])
        torch.testing.assert_close(model.loss(single), F.cross_entropy(logits[:, -1], seq_targets[:, -1] - 1))


def test_score_and_score_all_agree_and_errors_are_clear():
    model = make_model(0)
    batch = as_batch(random_history(0, 3, 12))
    items = torch.randint(1, I + 1, (3, 5))
    with torch.no_grad():
        torch.testing.assert_close(model.score(batch, items), model.score_all(batch).gather(1, items - 1))
    with pytest.raises(ValueError, match="max_len"):
        model(random_history(0, 2, 13))
    with pytest.raises(ValueError, match="seq_targets"):
        model.loss(batch)


def test_training_learns_a_deterministic_sequence():
    """Users walk 1 -> 2 -> ... around a 20-item circle: a trained SASRec must predict the next step."""
    split = split_of((user, (user % 20 + t) % 20 + 1, t) for user in range(40) for t in range(12))
    windows = training_windows(split, max_len=8, stride=2)
    valid = evaluation_batches(split, "valid", max_len=8)
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(split.num_items, max_len=8, d_model=16, n_heads=2, n_layers=1, dropout=0.0))
    config = TrainConfig(epochs=40, lr=1e-2, batch_size=32, patience=40, progress=False)
    result = fit(model, windows, valid, config=config, device="cpu")
    assert result.best_score > 0.95  # 9 unseen candidates per user: chance would give about 0.3
    model.eval()
    with torch.no_grad():
        predicted = model.score_all(valid[0]).argmax(1).numpy() + 1  # no exclusion: the top item overall
    np.testing.assert_array_equal(predicted, valid[0].targets.numpy())


def loop_attention_by_distance(weights: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
    """A direct double loop over (query, key) pairs: the reference."""
    length = history.shape[1]
    real = history != PAD_ID
    out = torch.full((length,), float("nan"))
    for d in range(length):
        vals = [weights[b, q, q - d] for b in range(len(history)) for q in range(d, length) if real[b, q] and real[b, q - d]]
        if vals:
            out[d] = torch.stack(vals).mean()
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_attention_by_distance_matches_a_loop_and_uniform_baseline(seed):
    model = make_model(seed)
    history = random_history(seed, 4, 12, pad_left=0)
    history[1, :4] = PAD_ID
    history[2, :11] = PAD_ID
    weights = model.attention(as_batch(history)).layers
    layer0 = weights[:, 0].mean(1)  # (B, L, L), heads averaged
    mean, baseline = attention_by_distance(layer0, history)
    torch.testing.assert_close(mean, loop_attention_by_distance(layer0, history), equal_nan=True)
    # uniform weights (1 / number of visible items) give exactly the baseline
    real = history != PAD_ID
    visible = torch.tril(torch.ones(12, 12, dtype=torch.bool)) & real[:, None, :] & real[:, :, None]
    uniform = visible / visible.sum(-1, keepdim=True).clamp_min(1)
    torch.testing.assert_close(attention_by_distance(uniform, history)[0], baseline, equal_nan=True)
    with pytest.raises(ValueError, match="average the heads"):
        attention_by_distance(weights, history)


def test_exercise_checkers_pass_the_reference_and_flag_mistakes(capsys):
    import torch.nn.functional as F

    from course_lib.exercises.sasrec import check_attention_by_distance, check_next_item_loss

    def good_loss(hidden, items, targets):
        keep = targets != PAD_ID
        return F.cross_entropy(hidden[keep] @ items[1:].T, targets[keep] - 1)

    def loss_with_padding(hidden, items, targets):
        return F.cross_entropy(hidden.reshape(-1, hidden.shape[-1]) @ items[1:].T, (targets.reshape(-1) - 1).clamp_min(0))

    def stub(*args):
        raise NotImplementedError

    def profile_ignoring_padding(weights, history):
        return torch.stack([torch.diagonal(weights, -d, 1, 2).mean() for d in range(history.shape[1])])

    for answer in (good_loss, loss_with_padding, stub):
        check_next_item_loss(answer)
    for answer in (lambda w, h: attention_by_distance(w, h)[0], profile_ignoring_padding, stub):
        check_attention_by_distance(answer)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line[0] for line in lines] == ["✅", "❌", "⏳", "✅", "❌", "⏳"]
    assert "padding" in lines[1] and "padding" in lines[4]


def tiny_sequence_settings(data: BenchData, mode: str, *, gru: bool) -> Settings:
    """Warm-up over half an epoch, then cosine decay: what the full mode trains with, at toy size."""
    num_items = data.split.num_items
    model = GRURecConfig(num_items, d_model=8) if gru else SASRecConfig(num_items, max_len=50, d_model=8, n_layers=1, n_heads=2)
    train = TrainConfig(epochs=3, lr=1e-2, batch_size=16, patience=3, warmup_epochs=0.5, schedule="cosine")
    return Settings(model, train, Windows(max_len=50, stride=5))


@pytest.mark.parametrize("gru", [True, False], ids=["GRU", "SASRec"])
def test_benchmark_entries_train_with_a_schedule(gru):
    entry = BenchModel("toy", lambda data, mode: tiny_sequence_settings(data, mode, gru=gru), build_gru if gru else build_sasrec)
    split = walk_split(users=30, items=20, events=15)
    data = BenchData("toy", split, evaluation_batches(split, "valid"), evaluation_batches(split, "test"))
    run = entry.train(data, "full", 0, torch.device("cpu"))
    assert run.epochs == 3 and run.seconds > 0
    assert run.model.score_all(run.test[0]).shape == (30, split.num_items)
