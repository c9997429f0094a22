"""The GRU baseline: causality, padding invariance (either side), the per-position loss, the interface."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from factories import history_batch as as_batch

from course_lib import PAD_ID
from course_lib.models.gru import GRURec, GRURecConfig

I = 30


def make_model(seed: int, n_layers: int = 1) -> GRURec:
    torch.manual_seed(seed)
    return GRURec(GRURecConfig(I, d_model=16, n_layers=n_layers, dropout=0.1)).eval()


def random_history(seed: int, batch: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, I + 1, (batch, length), generator=g)


def reference_states(model: GRURec, items: torch.Tensor) -> torch.Tensor:
    """Run torch's GRU on one unpadded history, no packing: (n,) -> (n, D)."""
    out, _ = model.gru(model.item_embedding(items)[None])
    return out[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_layers", [1, 2])
def test_states_match_an_unpadded_gru_whatever_the_padding(seed, n_layers):
    model = make_model(seed, n_layers)
    history = random_history(seed, 3, 8)
    lengths = [8, 5, 2]
    right = history.clone()  # newest at the end, padding on the left
    left = torch.zeros_like(history)  # padding on the right
    for row, n in enumerate(lengths):
        right[row, : 8 - n] = PAD_ID
        left[row, :n] = history[row, 8 - n :]
    with torch.no_grad():
        states_right, states_left = model(right), model(left)
        for row, n in enumerate(lengths):
            expected = reference_states(model, history[row, 8 - n :])
            torch.testing.assert_close(states_right[row, 8 - n :], expected)
            torch.testing.assert_close(states_left[row, :n], expected)
            assert states_right[row, : 8 - n].abs().sum() == 0, "padding slots hold zero states"
        torch.testing.assert_close(model.score_all(as_batch(right)), model.score_all(as_batch(left)))
        longer = torch.cat([torch.zeros(3, 4, dtype=torch.long), right], dim=1)
        torch.testing.assert_close(model.score_all(as_batch(longer)), model.score_all(as_batch(right)))


@pytest.mark.parametrize("seed", [0, 1])
def test_changing_a_later_item_leaves_earlier_states_unchanged(seed):
    model = make_model(seed)
    history = random_history(seed, 4, 10)
    with torch.no_grad():
        before = model(history)
        changed = history.clone()
        changed[:, 6] = changed[:, 6] % I + 1
        after = model(changed)
    torch.testing.assert_close(after[:, :6], before[:, :6])
    assert not torch.allclose(after[:, 6], before[:, 6])


def test_loss_is_cross_entropy_at_every_target_position_and_empty_history_is_finite():
    model = make_model(0)
    history = random_history(0, 4, 10)
    history[:, :3] = PAD_ID
    seq_targets = random_history(1, 4, 10)
    seq_targets[:, :3] = PAD_ID
    with torch.no_grad():
        logits = model.item_scores(model(history))  # (B, L, I)
        expected = F.cross_entropy(logits[:, 3:].reshape(-1, I), seq_targets[:, 3:].reshape(-1) - 1)
        torch.testing.assert_close(model.loss(as_batch(history, seq_targets=seq_targets)), expected)
        torch.testing.assert_close(model.score_all(as_batch(history)), logits[:, -1])
        empty = model.score_all(as_batch(torch.zeros(2, 10, dtype=torch.long)))
    assert torch.isfinite(empty).all()
    with pytest.raises(ValueError, match="seq_targets"):
        model.loss(as_batch(history))
