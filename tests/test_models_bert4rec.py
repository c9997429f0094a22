"""BERT4Rec: the cloze batch, MASK_ID, bidirectional attention, padding invariance, shapes."""

from __future__ import annotations

import pytest
import torch
from factories import history_batch as as_batch
from factories import random_split

from course_lib import PAD_ID
from course_lib.data import evaluation_batches, training_windows
from course_lib.metrics import evaluate
from course_lib.models.base import Recommender
from course_lib.models.bert4rec import BERT4Rec, BERT4RecConfig, append_mask_token, cloze, mask_token_id

ITEMS = 40


def make_model(seed: int, *, max_len: int = 12, n_heads: int = 2, n_layers: int = 2) -> BERT4Rec:
    torch.manual_seed(seed)
    config = BERT4RecConfig(ITEMS, max_len=max_len, d_model=16, n_heads=n_heads, n_layers=n_layers, dropout=0.0)
    return BERT4Rec(config).eval()


def right_aligned(seed: int, *, size: int = 5, length: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(1, ITEMS + 1, (size, length), generator=g)
    history[0, :4] = PAD_ID
    history[1, : length - 1] = PAD_ID
    history[2, :] = PAD_ID  # an empty history
    return history


def small_split(seed=0):
    return random_split(seed, users=30, items=ITEMS, events=(5, 20))


def test_mask_id_is_one_past_the_catalogue_and_never_scored():
    model = make_model(0)
    assert model.mask_id == mask_token_id(ITEMS) == ITEMS + 1
    assert model.item_embedding.num_embeddings == ITEMS + 2  # PAD_ID, items 1..I, MASK_ID
    batch = as_batch(right_aligned(0))
    assert model.score_all(batch).shape == (len(batch), ITEMS)  # columns are items 1..I only


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mask_prob", [0.1, 0.5, 1.0])
def test_cloze_never_hides_padding(seed, mask_prob):
    sequences = right_aligned(seed, size=8, length=15)
    inputs, labels = cloze(sequences, mask_id=ITEMS + 1, mask_prob=mask_prob, generator=torch.Generator().manual_seed(seed))
    pad = sequences == PAD_ID
    assert torch.all(inputs[pad] == PAD_ID) and torch.all(labels[pad] == PAD_ID)
    hidden = inputs == ITEMS + 1
    assert torch.equal(hidden, labels != PAD_ID)  # a label exactly where MASK_ID went in
    assert torch.equal(labels[hidden], sequences[hidden])  # the label is the hidden item
    assert torch.equal(inputs[~hidden], sequences[~hidden])  # everything else unchanged
    has_items = (~pad).any(1)
    assert torch.all(hidden.any(1) == has_items)  # every non-empty sequence hides at least one item


def test_cloze_rate_and_repeatability():
    sequences = torch.randint(1, ITEMS + 1, (200, 50))
    a = cloze(sequences, mask_id=ITEMS + 1, mask_prob=0.2, generator=torch.Generator().manual_seed(3))
    b = cloze(sequences, mask_id=ITEMS + 1, mask_prob=0.2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    rate = (a[0] == ITEMS + 1).float().mean().item()
    assert 0.18 < rate < 0.22
    with pytest.raises(ValueError, match="mask_prob"):
        cloze(sequences, mask_id=ITEMS + 1, mask_prob=0.0)
    with pytest.raises(ValueError, match="MASK_ID"):
        cloze(a[0], mask_id=ITEMS + 1, mask_prob=0.2)


def test_append_mask_token_drops_the_oldest_and_refuses_left_alignment():
    history = torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4], [0, 0, 0, 0]])
    assert append_mask_token(history, 9).tolist() == [[0, 3, 4, 9], [2, 3, 4, 9], [0, 0, 0, 9]]
    with pytest.raises(ValueError, match="right-aligned"):
        append_mask_token(torch.tensor([[3, 4, 0, 0]]), 9)


def test_prediction_input_keeps_the_whole_history_when_there_is_room():
    model = make_model(0, max_len=12)
    history = right_aligned(0, length=10)
    tokens = model.prediction_input(as_batch(history))
    assert tokens.shape == (len(history), 11)
    assert torch.equal(tokens[:, :-1], history) and torch.all(tokens[:, -1] == model.mask_id)
    full = right_aligned(1, length=12)
    assert torch.equal(model.prediction_input(as_batch(full))[:, :-1], full[:, 1:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_padding_invariance(seed):
    """More left padding changes nothing: padding is never attended and positions count back from the newest."""
    model = make_model(seed, max_len=16)
    history = right_aligned(seed, length=8)
    longer = torch.cat([torch.full((len(history), 5), PAD_ID), history], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(as_batch(longer)), model.score_all(as_batch(history)))
        tokens = model.prediction_input(as_batch(history))
        junk = tokens.clone()
        hidden_a = model(tokens)
        hidden_b = model(torch.cat([torch.full((len(tokens), 3), PAD_ID), junk], dim=1))[:, 3:]
    real = tokens != PAD_ID
    torch.testing.assert_close(hidden_b[real], hidden_a[real])


def test_attention_is_bidirectional_not_causal():
    """Changing a later item changes earlier positions (the opposite of SASRec's causality)."""
    model = make_model(4)
    tokens = torch.randint(1, ITEMS + 1, (3, 10))
    changed = tokens.clone()
    changed[:, 7:] = (changed[:, 7:] % ITEMS) + 1
    with torch.no_grad():
        before, weights = model.encode(tokens)
        after = model(changed)
    torch.testing.assert_close(model(tokens), before)
    assert not torch.allclose(after[:, :7], before[:, :7])
    assert weights.shape == (3, 2, 2, 10, 10)  # (B, n_layers, H, L, L)
    assert torch.all(weights.triu(diagonal=1).sum(dim=(-1, -2)) > 0)  # attention above the diagonal: the future


def test_attention_weights_ignore_padding_and_sum_to_one():
    model = make_model(5)
    batch = as_batch(right_aligned(5))
    with torch.no_grad():
        scores, weights = model.score_all(batch), model.attention(batch).layers
    tokens = model.prediction_input(batch)
    torch.testing.assert_close(weights, model.encode(tokens)[1])
    pad = tokens == PAD_ID  # (B, L)
    assert torch.all(weights.permute(0, 4, 1, 2, 3)[pad] == 0)  # no query attends a padding key
    real_rows = weights.permute(0, 3, 1, 2, 4)[~pad]  # (real positions, layers, H, L)
    torch.testing.assert_close(real_rows.sum(-1), torch.ones_like(real_rows.sum(-1)))
    assert torch.isfinite(scores).all()


def test_loss_is_cross_entropy_at_the_hidden_positions():
    model = make_model(6)
    sequences = right_aligned(6)
    batch = as_batch(torch.zeros_like(sequences), seq_targets=sequences)
    loss = model.loss(batch, generator=torch.Generator().manual_seed(0))
    inputs, labels = cloze(sequences, mask_id=model.mask_id, mask_prob=model.config.mask_prob,
                           generator=torch.Generator().manual_seed(0))
    logits = model.item_scores(model(inputs))  # (B, L, I)
    hidden = labels != PAD_ID
    expected = torch.nn.functional.cross_entropy(logits[hidden], labels[hidden] - 1)
    torch.testing.assert_close(loss, expected)


def test_training_sequences_hold_only_training_events_and_the_model_learns():
    split = small_split()
    windows = training_windows(split, max_len=12, stride=6)
    model = BERT4Rec(BERT4RecConfig(split.num_items, max_len=12, d_model=16, n_heads=2, dropout=0.0))
    for user in range(split.num_users):  # leakage: no validation or test item in any training sequence
        rows = windows.users == user
        batch = as_batch(windows.history[rows], seq_targets=windows.seq_targets[rows])
        items = set(model.training_sequences(batch).flatten().tolist()) - {PAD_ID}
        assert items <= set(split.train_sequence(user).tolist())
        if split.evaluable[user]:
            assert not items & set(split.sequences[user][-2:].tolist())
    batch = next(windows.batches(256, torch.Generator().manual_seed(0)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = model.loss(batch, generator=torch.Generator().manual_seed(1)).item()
    g = torch.Generator().manual_seed(2)
    for _ in range(40):
        optimizer.zero_grad()
        model.loss(batch, generator=g).backward()
        optimizer.step()
    assert model.loss(batch, generator=torch.Generator().manual_seed(1)).item() < first - 0.5


def test_shared_interface_and_clear_errors():
    split = small_split(1)
    model = BERT4Rec(BERT4RecConfig(split.num_items, max_len=10, d_model=8, n_heads=2, n_layers=1))
    assert isinstance(model, Recommender)
    assert not any(isinstance(v, torch.device) for v in vars(model).values())
    ev = evaluate(model, evaluation_batches(split, "test", max_len=10), device="cpu")
    assert ev.ranks.min() >= 1 and ev.ranks.max() <= split.num_items
    with pytest.raises(ValueError, match="max_len"):
        model(torch.ones(2, 11, dtype=torch.long))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bert4rec_on_cuda_matches_cpu():
    model = make_model(0)
    batch = as_batch(right_aligned(0))
    with torch.no_grad():
        cpu = model.score_all(batch)
        gpu = model.to("cuda").score_all(batch.to("cuda")).cpu()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=1e-4)
