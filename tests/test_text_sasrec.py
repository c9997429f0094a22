"""SASRec over frozen text features (a TextItemEncoder), training catalogues, and the cold-start split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from factories import history_batch, random_split

from course_lib import PAD_ID, set_seed
from course_lib.data import training_windows
from course_lib.data.batch import Batch
from course_lib.data.cold_start import chance_metrics, cold_start_batches, hold_out_items
from course_lib.metrics import evaluate, hit_rate, ndcg, repeat_targets
from course_lib.models import SASRec, SASRecConfig
from course_lib.models.candidate_subset import CandidateSubset
from course_lib.models.item_encoders import IdEmbedding, TextItemEncoder, TextItemEncoderConfig, lookup, make_item_encoder

I, DT, L = 30, 16, 8
FEATURES = ["id", "text", "id+text"]
CONFIG = SASRecConfig(I, max_len=L, d_model=8, n_heads=2, n_layers=2, dropout=0.0)


def text_embeddings() -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(I, DT, generator=torch.Generator().manual_seed(99)), dim=-1)


def make_model(features: str, seed: int = 0, catalogue: torch.Tensor | None = None) -> SASRec:
    """SASRec whose item vectors are E[i] ("id"), W t_i ("text") or E[i] + W t_i ("id+text")."""
    set_seed(seed)
    if features == "id":
        return SASRec(CONFIG, training_catalogue=catalogue)
    encoder = TextItemEncoder(TextItemEncoderConfig(I, text_dim=DT, d_model=8, with_id=features == "id+text"), text_embeddings())
    return SASRec(CONFIG, encoder, training_catalogue=catalogue)


def make_history(seed: int, batch: int = 4) -> torch.Tensor:
    history = torch.randint(1, I + 1, (batch, L), generator=torch.Generator().manual_seed(seed))
    history[1, :3] = PAD_ID
    history[2, :6] = PAD_ID
    return history


@pytest.mark.parametrize("features", FEATURES)
@pytest.mark.parametrize("seed", [0, 1])
def test_shapes(features, seed):
    model = make_model(features, seed).eval()
    history = make_history(seed)
    assert model(history).shape == (4, L, 8)
    assert model.score_all(history_batch(history)).shape == (4, I)
    table = model.item_encoder.table()
    assert table.shape == (I + 1, 8)
    assert torch.equal(table[PAD_ID], torch.zeros(8)), "PAD_ID must be the zero vector"


@pytest.mark.parametrize("features", FEATURES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_causal(features, seed):
    model = make_model(features, seed).eval()
    history = make_history(seed)
    changed = history.clone()
    changed[:, 6] = changed[:, 6] % I + 1
    with torch.no_grad():
        before, after = model(history), model(changed)
    torch.testing.assert_close(after[:, :6], before[:, :6])
    assert not torch.allclose(after[:, 6:], before[:, 6:])


def test_id_mode_is_plain_sasrec():
    model = make_model("id", seed=3).eval()
    set_seed(3)
    plain = SASRec(SASRecConfig(I, max_len=L, d_model=8, n_heads=2, n_layers=2, dropout=0.0)).eval()
    history = make_history(3)
    assert isinstance(model.item_encoder, IdEmbedding)
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(history_batch(history)), plain.score_all(history_batch(history)))


def test_item_vectors_follow_the_formula():
    text_model, sum_model = make_model("text", 1), make_model("id+text", 1)
    text_encoder, sum_encoder = text_model.item_encoder, sum_model.item_encoder
    assert text_encoder.id_embedding is None and sum_encoder.id_embedding is not None
    items = torch.tensor([1, 5, I])
    t = text_embeddings()[items - 1]  # row c of the embeddings is item c + 1
    with torch.no_grad():
        torch.testing.assert_close(lookup(text_encoder.table(), items), t @ text_encoder.text_projection.weight.T)
        expected = sum_encoder.id_embedding(items) + t @ sum_encoder.text_projection.weight.T
        torch.testing.assert_close(lookup(sum_encoder.table(), items), expected)
        # the tied output layer reads the same vectors: scores are hidden states . table rows
        hidden = sum_model(make_history(1))
        torch.testing.assert_close(sum_model.item_scores(hidden), hidden @ sum_encoder.table()[1:].T)


@pytest.mark.parametrize("features", ["text", "id+text"])
def test_text_features_stay_frozen(features):
    model = make_model(features).train()
    encoder = model.item_encoder
    frozen = encoder.text_features.clone()
    projection = encoder.text_projection.weight.detach().clone()
    assert all(p is not encoder.text_features for p in model.parameters()), "text features must not be a parameter"
    assert "item_encoder.text_features" not in model.state_dict(), "they are data, not weights"
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    history = make_history(0)
    targets = torch.where(history == PAD_ID, history, history % I + 1)
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(history_batch(history, seq_targets=targets)).backward()
        optimizer.step()
    assert torch.equal(encoder.text_features, frozen)
    assert not torch.allclose(encoder.text_projection.weight, projection), "the projection must learn"


@pytest.mark.parametrize("features", FEATURES)
def test_items_outside_the_training_catalogue_get_no_gradient(features):
    catalogue = torch.ones(I, dtype=torch.bool)
    catalogue[[4, 9, 19]] = False  # items 5, 10, 20 held out
    history = make_history(0)
    history[history == 5], history[history == 10], history[history == 20] = 1, 1, 1
    targets = torch.where(history == PAD_ID, history, (history % (I - 1)) + 1)
    targets[(targets == 5) | (targets == 10) | (targets == 20)] = 2
    for masked in (True, False):
        model = make_model(features, catalogue=catalogue if masked else None).train()
        model.loss(history_batch(history, seq_targets=targets)).backward()
        table = model.item_encoder if features == "id" else model.item_encoder.id_embedding
        if table is None:  # "text": no ID rows; the shared projection learns from the other items
            continue
        grad_rows = table.weight.grad[[5, 10, 20]]
        if masked:
            assert torch.equal(grad_rows, torch.zeros_like(grad_rows)), "held-out rows must get no gradient at all"
        else:  # full softmax: every non-target is a negative and is pushed down
            assert grad_rows.abs().sum() > 0
    model.eval()  # evaluation ranks the whole catalogue, held-out items included
    assert torch.isfinite(model.score_all(history_batch(history))).all()


def test_bad_inputs_are_named():
    config = TextItemEncoderConfig(I, text_dim=DT, d_model=8)
    with pytest.raises(ValueError, match="text_embeddings"):
        TextItemEncoder(config, torch.zeros(I + 1, DT))
    with pytest.raises(ValueError, match="NaN"):
        TextItemEncoder(config, torch.full((I, DT), float("nan")))
    with pytest.raises(TypeError, match="needs Tensor"):
        make_item_encoder(config, [[0.0] * DT] * I)
    with pytest.raises(ValueError, match="training_catalogue"):
        SASRec(CONFIG, training_catalogue=torch.ones(I))
    with pytest.raises(ValueError, match="D = 8 vectors for I = 30"):
        SASRec(CONFIG, TextItemEncoder(TextItemEncoderConfig(I, text_dim=DT, d_model=16), text_embeddings()))


# --------------------------------------------------------------------------- cold start


def synthetic_split(seed: int):
    return random_split(seed, users=40, items=50, events=(2, 25), repeats=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cold_split_leaks_no_held_out_item_into_training(seed):
    split = synthetic_split(seed)
    cold = hold_out_items(split, 0.2, seed=seed)
    assert len(cold.held_out) == round(0.2 * split.num_items) and len(np.unique(cold.held_out)) == len(cold.held_out)
    held = torch.from_numpy(cold.held_out)
    windows = training_windows(cold.train, max_len=6, stride=3)
    assert not torch.isin(windows.history, held).any(), "a held-out item is a training input"
    assert not torch.isin(windows.seq_targets, held).any(), "a held-out item is a training target"
    for user in range(split.num_users):
        assert not np.isin(cold.train.train_sequence(user), cold.held_out).any()
        if cold.train.evaluable[user]:  # validation and test events are untouched
            assert np.array_equal(cold.train.sequences[user][-2:], split.sequences[user][-2:])
    # what was removed is exactly the training events on held-out items
    kept = sum(len(cold.train.train_sequence(u)) for u in range(split.num_users))
    expected = sum(int((~np.isin(split.train_sequence(u), cold.held_out)).sum()) for u in range(split.num_users))
    assert kept == expected


def test_cold_split_is_seeded():
    split = synthetic_split(0)
    assert np.array_equal(hold_out_items(split, 0.1, seed=5).held_out, hold_out_items(split, 0.1, seed=5).held_out)
    assert not np.array_equal(hold_out_items(split, 0.3, seed=5).held_out, hold_out_items(split, 0.3, seed=6).held_out)
    with pytest.raises(ValueError, match="fraction"):
        hold_out_items(split, 1.0, seed=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_cold_start_batches(seed):
    split = synthetic_split(seed)
    cold = hold_out_items(split, 0.25, seed=seed)
    held = torch.from_numpy(cold.held_out)
    counts = {}
    for kind in ("held_out", "warm", "all"):
        batches = cold_start_batches(cold, "test", targets=kind, max_len=6, batch_size=7)
        counts[kind] = sum(len(b) for b in batches)
        for b in batches:
            assert not torch.isin(b.history, held).any(), "evaluation inputs must not contain held-out items"
            is_cold = torch.isin(b.targets, held)
            assert is_cold.all() if kind == "held_out" else (~is_cold).all() if kind == "warm" else True
            for row, user in enumerate(b.users.tolist()):
                full_input, _, target, _ = split.stage_input(user, "test")
                assert int(b.targets[row]) == target
                seen = b.seen[row][b.seen[row] != PAD_ID].numpy()
                assert np.array_equal(seen, full_input), "seen must be the full, unfiltered input"
    assert counts["held_out"] + counts["warm"] == counts["all"] > 0


def test_chance_metrics_by_hand():
    # I = 6; the user has seen items 1 and 2, the target is 3: four items are ranked (3, 4, 5, 6)
    batch = Batch(users=torch.tensor([0]), history=torch.tensor([[1, 2]]), history_times=torch.zeros(1, 2, dtype=torch.long),
                  targets=torch.tensor([3]), seen=torch.tensor([[1, 2]]))
    got = chance_metrics([batch], 6, k=1)
    assert got["HR@1"] == pytest.approx(1 / 4) and got["NDCG@1"] == pytest.approx(1 / 4)
    got = chance_metrics([batch], 6, k=2)
    assert got["NDCG@2"] == pytest.approx((1 + 1 / np.log2(3)) / 4)
    # among candidates {3, 5} only: two items ranked
    assert chance_metrics([batch], 6, candidates=[3, 5], k=1)["HR@1"] == pytest.approx(1 / 2)


@pytest.mark.filterwarnings("ignore:.*repeat consumption")  # this random split has repeat targets, on purpose
@pytest.mark.parametrize("repeats", ["drop", "rank_seen"])
def test_chance_metrics_match_random_scores_on_average(repeats):
    split = synthetic_split(0)
    cold = hold_out_items(split, 0.3, seed=0)
    batches = cold_start_batches(cold, "test", targets="all", max_len=6)

    class RandomScores(torch.nn.Module):
        num_items = split.num_items

        def __init__(self, seed):
            super().__init__()
            self.g = torch.Generator().manual_seed(seed)

        def score_all(self, batch):
            return torch.rand(len(batch), self.num_items, generator=self.g)

    assert sum(int(repeat_targets(batch).sum()) for batch in batches) > 0  # both rules are exercised
    hits = [hit_rate(evaluate(RandomScores(s), batches, repeats=repeats).ranks, 10) for s in range(200)]
    assert np.mean(hits) == pytest.approx(chance_metrics(batches, split.num_items, repeats=repeats)["HR@10"], abs=0.02)


def test_candidate_subset_ranks_only_the_subset():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.7, 0.2]])  # items 1..5

    class Fixed(torch.nn.Module):
        num_items = 5

        def score_all(self, batch):
            return scores

    batch = Batch(users=torch.tensor([0]), history=torch.tensor([[PAD_ID]]), history_times=torch.zeros(1, 1, dtype=torch.long),
                  targets=torch.tensor([3]), seen=torch.tensor([[PAD_ID]]))
    assert int(evaluate(Fixed(), [batch]).ranks[0]) == 5  # item 3 is last of five
    subset = CandidateSubset(Fixed(), torch.tensor([3, 5]))
    assert int(evaluate(subset, [batch]).ranks[0]) == 2  # among {3, 5}: behind item 5
    assert ndcg(evaluate(subset, [batch]).ranks, 10) == pytest.approx(1 / np.log2(3))
