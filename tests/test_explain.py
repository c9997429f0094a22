"""Tests of course_lib.explain (importance measures, agreement) and course_lib.data.noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from checker_support import erasure_answer
from factories import history_batch as _batch
from torch import Tensor, nn

from course_lib import PAD_ID
from course_lib.data import Batch
from course_lib.data.noise import add_noise, noisy_batch
from course_lib.explain import (
    attention_importance,
    erasure_importance,
    gradient_x_input,
    ground_truth_labels,
    importance_auc,
    layer_attention,
    mass_on_truth,
    uniform_mass_on_truth,
)
from course_lib.models import DIN, DINConfig, GRURec, GRURecConfig, SASRec, SASRecConfig


class SumModel(nn.Module):
    """s(c) = w . sum_l e_l + e_c . e_c: linear in the history embeddings, with a known gradient."""

    def __init__(self, num_items: int, dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.item_embedding = nn.Embedding(num_items + 1, dim, padding_idx=PAD_ID)
        with torch.no_grad():
            self.item_embedding.weight.copy_(torch.randn(num_items + 1, dim, generator=g))
            self.item_embedding.weight[PAD_ID].zero_()
        self.w = nn.Parameter(torch.randn(dim, generator=g))

    @property
    def history_lookup(self) -> nn.Module:  # what gradient x input hooks by default
        return self.item_embedding

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        pooled = self.item_embedding(batch.history).sum(1)  # (B, D)
        cand = self.item_embedding(items)  # (B, N, D)
        return (pooled @ self.w)[:, None] + (cand * cand).sum(-1)  # (B, N)


class SquareModel(SumModel):
    """s = (w . sum_l e_l)^2: erasure and gradient x input differ, both computable by hand."""

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        pooled = self.item_embedding(batch.history).sum(1)  # (B, D)
        return ((pooled @ self.w) ** 2)[:, None].expand(-1, items.shape[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_x_input_of_a_linear_model_is_w_dot_e(seed: int) -> None:
    model = SumModel(num_items=9, dim=5, seed=seed)
    history = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 6, 7, 8]])
    targets = torch.tensor([3, 9])  # a candidate that is also in the history must not count twice
    got = gradient_x_input(model, _batch(history), targets)
    expected = model.item_embedding(history) @ model.w  # (B, L): d s / d e_l = w
    torch.testing.assert_close(got, expected.detach())
    assert got[0, :2].abs().max() == 0  # padding: zero embedding


@pytest.mark.parametrize("seed", [0, 3])
def test_erasure_matches_a_hand_computation(seed: int) -> None:
    model = SquareModel(num_items=6, dim=3, seed=seed)
    history = torch.tensor([[0, 2, 4, 5], [1, 3, 6, 2]])
    targets = torch.tensor([1, 1])
    got = erasure_importance(model, _batch(history), targets, chunk_size=3)  # chunks smaller than B*L
    with torch.no_grad():
        a = model.item_embedding(history) @ model.w  # (B, L) each event's term
        total = a.sum(1, keepdim=True)
        expected = total**2 - (total - a) ** 2  # s(full) - s(without l)
        expected[history == PAD_ID] = 0.0
    torch.testing.assert_close(got, expected)
    # gradient x input of s = t^2 is 2 t a_l: not the same as erasure (the model is not linear)
    gxi = gradient_x_input(model, _batch(history), targets)
    torch.testing.assert_close(gxi, (2 * total * a).detach())
    assert not torch.allclose(gxi, got)


def test_erasure_and_attention_on_din_and_sasrec() -> None:
    torch.manual_seed(0)
    din = DIN(DINConfig(num_items=20, d_model=8, dropout=0.0))
    history = torch.tensor([[0, 0, 5, 9, 12, 3], [7, 1, 2, 8, 4, 6]])
    batch, targets = _batch(history), torch.tensor([4, 11])
    erased = erasure_importance(din, batch, targets)
    for b, l in [(0, 3), (1, 0)]:  # by hand: score with position l set to PAD_ID
        cut = history.clone()
        cut[b, l] = PAD_ID
        with torch.no_grad():
            drop = din.score(batch, targets[:, None])[b, 0] - din.score(_batch(cut), targets[:, None])[b, 0]
        torch.testing.assert_close(erased[b, l], drop)
    weights = attention_importance(din, batch, targets)
    assert weights.shape == (2, 6) and weights[0, :2].abs().max() == 0
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    with torch.no_grad():
        _, by_hand = din.eval().target_attention(history, targets[:, None])  # (B, H, 1, L)
    torch.testing.assert_close(weights, by_hand.mean(1)[:, 0])
    sasrec = SASRec(SASRecConfig(num_items=20, max_len=6, d_model=8, n_heads=2, n_layers=2))
    for layer in (0, 1, -1):
        row = layer_attention(sasrec, batch, layer=layer)
        assert row.shape == (2, 6) and row[0, :2].abs().max() == 0
        torch.testing.assert_close(row.sum(1), torch.ones(2))
    # a SASRec's own explanation is the last layer's newest row, whatever the target
    torch.testing.assert_close(attention_importance(sasrec, batch, targets), layer_attention(sasrec, batch))
    assert sasrec.training  # the mode is restored
    gxi = gradient_x_input(sasrec, batch, targets)
    assert gxi.shape == (2, 6) and gxi[0, :2].abs().max() == 0 and gxi[0, 2:].abs().min() > 0


def test_agreement_measures_by_hand() -> None:
    importance = torch.tensor([[0.0, 0.5, -1.0, 0.3, 0.2], [0.0, 0.0, 1.0, 1.0, 2.0], [0.0, 0.0, 0.0, -1.0, -2.0]])
    real = torch.tensor([[False, True, True, True, True], [False, False, True, True, True], [False, False, False, True, True]])
    relevant = torch.tensor([[False, True, True, False, False], [False, False, True, True, False], [False, False, False, True, False]])
    mass = mass_on_truth(importance, relevant, real)
    assert mass[0].item() == pytest.approx(0.5 / 1.0)  # positive mass 0.5 + 0.3 + 0.2; -1.0 counts 0
    assert mass[1].item() == pytest.approx(2.0 / 4.0)
    assert torch.isnan(mass[2])  # no positive importance at all
    uniform = uniform_mass_on_truth(relevant, real)
    torch.testing.assert_close(uniform, torch.tensor([0.5, 2 / 3, 0.5], dtype=torch.float64))
    auc = importance_auc(importance, relevant, real)
    # row 0: relevant {0.5, -1.0} vs others {0.3, 0.2}: 0.5 beats both, -1.0 beats none -> 2/4
    # row 1: relevant {1, 1} vs {2}: 0/2; row 2: relevant {-1} vs {-2}: 1/1
    torch.testing.assert_close(auc, torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64))
    ties = importance_auc(torch.ones(1, 4), torch.tensor([[True, False, True, False]]), torch.ones(1, 4, dtype=torch.bool))
    assert ties.item() == 0.5
    none = importance_auc(torch.ones(1, 3), torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool))
    assert torch.isnan(none).all()
    with pytest.raises(ValueError, match="must all be"):
        mass_on_truth(importance, relevant[:, :3], real)


def test_agreement_auc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        importance = torch.randint(0, 4, (5, 12), generator=g).double()  # many ties
        relevant = torch.rand(5, 12, generator=g) < 0.4
        real = torch.ones(5, 12, dtype=torch.bool)
        got = importance_auc(importance, relevant, real)
        for b in range(5):
            if relevant[b].any() and (~relevant[b]).any():
                assert got[b].item() == pytest.approx(roc_auc_score(relevant[b].numpy(), importance[b].numpy()))


def test_ground_truth_labels_line_up_with_the_history() -> None:
    import pandas as pd

    from course_lib.data import evaluation_batches, temporal_leave_one_out

    events = pd.DataFrame(
        {"user": [0] * 5 + [1] * 4, "item": [1, 2, 3, 4, 5, 2, 6, 3, 1], "timestamp": list(range(9)),
         "interest": [0, 1, 0, 1, 0, 2, -1, 2, 2]}
    )
    split = temporal_leave_one_out(events, catalogue=range(1, 7))
    relevant, history_interest, target_interest = ground_truth_labels(split, events["interest"].to_numpy(), [0, 1], "test", 5)
    batch = evaluation_batches(split, "test", max_len=5)[0]
    assert target_interest.tolist() == [0, 2]
    assert history_interest.tolist() == [[-1, 0, 1, 0, 1], [-1, -1, 2, -1, 2]]
    assert relevant.tolist() == [[False, True, False, True, False], [False, False, True, False, True]]
    assert torch.equal(history_interest == -1, (batch.history == PAD_ID) | (history_interest == -1))  # padding lines up
    assert (batch.history == PAD_ID).sum() == 3 and (history_interest[batch.history == PAD_ID] == -1).all()
    assert not relevant[batch.history == PAD_ID].any()


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_noise_keeps_padding_length_and_is_seeded(rate: float) -> None:
    history = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]])
    noisy, flipped = add_noise(history, rate, 50, torch.Generator().manual_seed(1))
    again, _ = add_noise(history, rate, 50, torch.Generator().manual_seed(1))
    assert noisy.shape == history.shape and noisy.dtype == history.dtype
    assert torch.equal(noisy, again)  # same seed, same noise
    assert torch.equal(noisy == PAD_ID, history == PAD_ID)  # padding stays, no item becomes padding
    assert torch.equal(noisy[~flipped], history[~flipped])
    assert not flipped[history == PAD_ID].any()
    if rate == 0.0:
        assert torch.equal(noisy, history)
    if rate == 1.0:
        assert torch.equal(flipped, history != PAD_ID)
    assert int(noisy.min()) >= 0 and int(noisy.max()) <= 50


def test_noise_rate_and_avoid() -> None:
    history = torch.randint(1, 11, (400, 25), generator=torch.Generator().manual_seed(0))
    _, flipped = add_noise(history, 0.3, 10, torch.Generator().manual_seed(2))
    assert abs(flipped.double().mean().item() - 0.3) < 0.02
    avoid = torch.full((400,), 7)
    noisy, flipped = add_noise(history, 1.0, 10, torch.Generator().manual_seed(3), avoid=avoid)
    assert not (noisy[flipped] == 7).any()
    other, _ = add_noise(history, 1.0, 10, torch.Generator().manual_seed(4), avoid=avoid)
    assert not torch.equal(noisy, other)  # a different seed, different noise
    batch = _batch(history, targets=torch.full((400,), 7), seen=history)
    out = noisy_batch(batch, 1.0, 10, torch.Generator().manual_seed(3))
    assert torch.equal(out.history, noisy) and torch.equal(out.seen, history)
    with pytest.raises(ValueError, match="rate"):
        add_noise(history, 1.5, 10, torch.Generator())


def test_targets_shape_is_checked_and_models_without_attention_say_so() -> None:
    model = SumModel(5, 3, 0)
    with pytest.raises(ValueError, match="targets must be"):
        erasure_importance(model, _batch(torch.tensor([[1, 2]])), torch.tensor([[1]]))
    gru = GRURec(GRURecConfig(5, d_model=4))
    with pytest.raises(NotImplementedError, match="GRURec has no attention"):
        attention_importance(gru, _batch(torch.tensor([[1, 2]])), torch.tensor([3]))
    with pytest.raises(ValueError, match="names no module"):
        gradient_x_input(gru, _batch(torch.tensor([[1, 2]])), torch.tensor([3]))


def test_trust_checkers(capsys: pytest.CaptureFixture[str]) -> None:
    from course_lib.exercises.trust import check_erasure, check_mass_on_truth

    check_erasure(erasure_answer)
    check_erasure(lambda score, history: -erasure_answer(score, history))
    check_erasure(None)
    check_mass_on_truth(mass_on_truth)
    check_mass_on_truth(lambda a, rel, real: (a * real * rel).sum(1) / (a * real).sum(1))
    out = capsys.readouterr().out.splitlines()
    assert "passed" in out[0] and "sign is flipped" in out[1] and "not answered" in out[2]
    assert "passed" in out[3] and "clamp" in out[4]


@pytest.mark.parametrize("kind", ["din", "sasrec"])
def test_gradient_x_input_is_the_directional_derivative_on_real_models(kind: str) -> None:
    """g_l = d/da s(history with e_l scaled by a) at a = 1, checked by central differences (float64)."""
    torch.manual_seed(1)
    if kind == "din":
        model = DIN(DINConfig(num_items=15, d_model=8, dropout=0.0))
    else:
        model = SASRec(SASRecConfig(num_items=15, max_len=5, d_model=8, n_heads=2, n_layers=2, dropout=0.0))
    model = model.double().eval()
    history = torch.tensor([[0, 3, 7, 1, 9], [2, 4, 6, 8, 10]])
    batch, targets = _batch(history), torch.tensor([5, 12])
    got = gradient_x_input(model, batch, targets)
    eps = 1e-5
    for b, l in [(0, 1), (0, 4), (1, 0), (1, 2)]:
        values = []
        for a in (1 + eps, 1 - eps):
            def scale(module, inputs, output, a=a, b=b, l=l):
                if inputs[0] is batch.history:
                    output = output.clone()
                    output[b, l] *= a
                    return output
                return None
            handle = model.history_lookup.register_forward_hook(scale)
            with torch.no_grad():
                values.append(model.score(batch, targets[:, None])[b, 0])
            handle.remove()
        torch.testing.assert_close(got[b, l], (values[0] - values[1]) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_baselines_by_hand() -> None:
    from course_lib.explain import newest_importance, recency_importance, similarity_importance

    history = torch.tensor([[0, 0, 3, 1, 2], [0, 4, 0, 5, 6]])  # left padding; a PAD_ID inside row 2 too
    real = history != PAD_ID
    assert newest_importance(real).tolist() == [[0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]
    assert torch.allclose(recency_importance(real, 0.5), torch.tensor([[0, 0, 0.25, 0.5, 1], [0, 0.25, 0, 0.5, 1]]).double())
    assert torch.equal(recency_importance(real, 1.0), real.double())  # decay 1 = uniform
    vectors = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([2, 1])
    cosine = similarity_importance(vectors, history, targets)
    reference = torch.cosine_similarity(vectors[history].double(), vectors[targets].double()[:, None, :], dim=-1)
    assert torch.allclose(cosine, reference.masked_fill(~real, 0.0))
    for bad in (0.0, 1.5, -0.2, True, "0.5"):
        with pytest.raises(ValueError, match="decay must be a number in"):
            recency_importance(real, bad)
    with pytest.raises(ValueError, match="real must be a"):
        newest_importance(history)  # ids, not a bool mask
    with pytest.raises(ValueError, match="has no row in item_vectors"):
        similarity_importance(vectors[:5], history, targets)


class _NewestOnly(nn.Module):
    """A fake recommender whose attention is all on the newest event."""

    def attention(self, batch: Batch, items: Tensor):
        from course_lib.explain import newest_importance
        from course_lib.models import AttentionMaps

        return AttentionMaps(history=newest_importance(batch.history != PAD_ID)[:, None, :].float())


def _shop(config):
    from course_lib.data import evaluation_batches, generate_shopworld, temporal_leave_one_out

    world = generate_shopworld(config)
    split = temporal_leave_one_out(world.interactions, catalogue=world.items.index)
    return world, split, {stage: evaluation_batches(split, stage, max_len=30) for stage in ("valid", "test")}


def test_recency_explains_the_sticky_shop_and_not_the_low_stickiness_one() -> None:
    """The reason for the baselines: on the default shop "newest" alone scores far above uniform; not without stickiness."""
    from course_lib.data import ShopWorldConfig, low_stickiness_config
    from course_lib.explain import DECAY_GRID, fit_recency_decay, interest_alignment

    means = {}
    for name, config in {"sticky": ShopWorldConfig(num_items=320, num_users=200),
                         "low": low_stickiness_config(num_items=320, num_users=200)}.items():
        world, split, batches = _shop(config)
        interest = world.interactions["interest"].to_numpy()
        decay = fit_recency_decay(split, interest, batches["valid"])
        assert decay in DECAY_GRID
        result = interest_alignment(_NewestOnly(), split, interest, batches["test"], decay=decay)
        assert list(result.baselines) == ["uniform", "newest", "recency"]
        assert np.array_equal(result.share, result.baselines["newest"])  # the fake model is the newest baseline
        same = result.versus("newest")
        assert same.mean == 0 and same.low == 0 and same.high == 0
        means[name] = {key: float(value.mean()) for key, value in result.baselines.items()}
        table = result.table()
        assert table.loc["model attention", "mass on truth"] == pytest.approx(means[name]["newest"])
    assert means["sticky"]["newest"] > means["sticky"]["uniform"] + 0.25
    assert abs(means["low"]["newest"] - means["low"]["uniform"]) < 0.08


def test_low_stickiness_shop_switches_interest_at_chance() -> None:
    from course_lib.data import ShopWorldConfig, generate_shopworld, low_stickiness_config

    def same_rate(world):
        same, chance = [], []
        for user, events in world.interactions.groupby("user"):
            k = events["interest"].to_numpy()
            ok = (k[1:] >= 0) & (k[:-1] >= 0)
            same.extend((k[1:] == k[:-1])[ok])
            chance.extend([1 / len(world.users.loc[user, "interests"])] * int(ok.sum()))
        return float(np.mean(same)), float(np.mean(chance))

    sticky, chance = same_rate(generate_shopworld(ShopWorldConfig(num_items=320, num_users=300)))
    assert sticky > chance + 0.3
    low, chance = same_rate(generate_shopworld(low_stickiness_config(num_items=320, num_users=300)))
    assert abs(low - chance) < 0.03
    with pytest.raises(ValueError, match="drift_width must be a number > 0"):
        ShopWorldConfig(drift_width=0)


# --- faithfulness (rank correlation, permutation baseline), importance_alignment, prediction agreement ---


def _random_rows(seed: int, size: int = 12, length: int = 9, ties: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(size, length, generator=g), torch.randn(size, length, generator=g)
    if ties:  # few distinct values: many ties in both
        a, b = a.round(), (b * 0.7).round()
    real = torch.ones(size, length, dtype=torch.bool)
    for row in range(size):
        real[row, : row % (length - 2)] = False  # left padding of every length from 0 up
    return a, b, real


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_correlation_matches_scipy(seed: int, ties: bool) -> None:
    from scipy import stats

    from course_lib.explain import rank_correlation

    a, b, real = _random_rows(seed, ties=ties)
    a[~real], b[~real] = 99.0, -99.0  # padding values must be ignored
    spearman = rank_correlation(a, b, real, method="spearman")
    kendall = rank_correlation(a, b, real, method="kendall")
    for row in range(len(a)):
        x, y = a[row][real[row]].numpy(), b[row][real[row]].numpy()
        if np.unique(x).size < 2 or np.unique(y).size < 2:
            assert spearman[row].isnan() and kendall[row].isnan()
            continue
        assert spearman[row].item() == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-10)
        assert kendall[row].item() == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-10)  # tau-b


def test_rank_correlation_edge_cases_and_bad_input() -> None:
    from course_lib.explain import rank_correlation

    a = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 5.0], [1.0, 1.0, 1.0, 1.0]])
    real = torch.tensor([[True, True, True, True], [False, False, False, True], [True, True, True, True]])
    out = rank_correlation(a, a, real)
    assert out[0] == pytest.approx(1.0) and out[1:].isnan().all()  # one real event; a constant row
    assert rank_correlation(a, -a, real, method="kendall")[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        rank_correlation(a, a, real, method="pearson")
    with pytest.raises(ValueError, match="must all be"):
        rank_correlation(a, a[:, :3], real)
    with pytest.raises(ValueError, match="real must be a"):
        rank_correlation(a, a, real.long())


def test_permutation_keeps_each_rows_values_and_padding() -> None:
    from course_lib.explain import permute_within_rows

    a, _, real = _random_rows(0)
    a = a.masked_fill(~real, 0.0)
    first = permute_within_rows(a, real, torch.Generator().manual_seed(0))
    again = permute_within_rows(a, real, torch.Generator().manual_seed(0))
    assert torch.equal(first, again)  # seeded
    assert (first[~real] == 0).all()
    for row in range(len(a)):
        assert torch.equal(first[row][real[row]].sort().values, a[row][real[row]].sort().values)
    assert not torch.equal(first, a)
    # over many draws each real slot receives each real value about equally often
    row = real[0:1].clone()
    values = torch.arange(9.0)[None]
    g = torch.Generator().manual_seed(1)
    counts = torch.stack([permute_within_rows(values, row, g)[0] == 0 for _ in range(900)]).double().mean(0)
    assert counts.sub(1 / 9).abs().max() < 0.04


def test_rank_agreement_of_the_reference_itself_and_of_noise() -> None:
    from course_lib.explain import rank_agreement

    a, b, real = _random_rows(3, size=200, length=10)
    same = rank_agreement(a, a * 2 + 1, real, n_permutations=5)  # a monotone transform: correlation 1
    assert np.allclose(same.correlation, 1.0)
    assert same.versus_permutation().low > 0.8
    noise = rank_agreement(a, b, real, n_permutations=5)  # independent: no margin
    margin = noise.versus_permutation()
    assert margin.low < 0 < margin.high
    assert noise.interval().low < 0 < noise.interval().high
    row = noise.row()
    assert row["users"] == len(noise.users) and row["rank corr"] == pytest.approx(noise.mean)
    keep = torch.zeros(200, dtype=torch.bool)
    keep[:50] = True
    assert set(rank_agreement(a, b, real, keep=keep).users.tolist()) <= set(range(50))
    with pytest.raises(ValueError, match="n_permutations must be a positive int"):
        rank_agreement(a, b, real, n_permutations=0)


def test_importance_alignment_equals_interest_alignment_for_the_attention() -> None:
    from course_lib.data import ShopWorldConfig
    from course_lib.explain import importance_alignment, interest_alignment

    world, split, batches = _shop(ShopWorldConfig(num_items=320, num_users=120))
    interest = world.interactions["interest"].to_numpy()
    model = _NewestOnly()
    vectors = torch.randn(split.num_items + 1, 4, generator=torch.Generator().manual_seed(0))
    whole = interest_alignment(model, split, interest, batches["test"], decay=0.5, item_vectors=vectors)
    from course_lib.data import evaluation_batches

    (one,) = evaluation_batches(split, "test", max_len=30, batch_size=split.num_users)
    got = importance_alignment(attention_importance(model, one, one.targets), split, interest, one, decay=0.5, item_vectors=vectors)
    assert np.array_equal(got.users, whole.users) and np.allclose(got.share, whole.share)
    for name in whole.baselines:
        assert np.allclose(got.baselines[name], whole.baselines[name])
    negative = -torch.ones_like(one.history, dtype=torch.float)  # no positive importance anywhere: every user left out
    negative[0, -1] = 1.0
    assert len(importance_alignment(negative, split, interest, one).users) <= 1
    with pytest.raises(ValueError, match="importance must be"):
        importance_alignment(negative[:, :5], split, interest, one)


def test_prediction_agreement_by_hand() -> None:
    from course_lib.explain import prediction_agreement

    torch.manual_seed(0)
    make = lambda: DIN(DINConfig(num_items=20, d_model=8, dropout=0.0))  # noqa: E731
    a, b = make(), make()
    history = torch.tensor([[0, 0, 5, 9, 12, 3], [7, 1, 2, 8, 4, 6]])
    batch = _batch(history, targets=torch.tensor([4, 11]), seen=history)
    same = prediction_agreement(a, a, [batch], k=5)
    assert np.allclose(same.overlap, 1.0) and np.allclose(same.total_variation, 0.0)
    got = prediction_agreement(a, b, [batch], k=5)
    with torch.no_grad():
        for row in range(2):
            allowed = [i for i in range(1, 21) if i not in history[row].tolist() or i == int(batch.targets[row])]
            cols = torch.tensor(allowed) - 1
            sa, sb = a.score_all(batch)[row, cols].double(), b.score_all(batch)[row, cols].double()
            top_a = set(cols[sa.topk(5).indices].tolist())
            top_b = set(cols[sb.topk(5).indices].tolist())
            assert got.overlap[row] == pytest.approx(len(top_a & top_b) / 5)
            assert got.total_variation[row] == pytest.approx(0.5 * (sa.softmax(0) - sb.softmax(0)).abs().sum().item())
    summary = got.summary()
    assert summary["overlap min"] == got.overlap.min() and summary["TV max"] == got.total_variation.max()
    with pytest.raises(ValueError, match="k must be an int"):
        prediction_agreement(a, b, [batch], k=0)
    with pytest.raises(ValueError, match="different catalogues"):
        prediction_agreement(a, DIN(DINConfig(num_items=21, d_model=8)), [batch])
