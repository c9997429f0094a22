"""Generative retrieval (notebook 16): the trie, constrained beam search, the code decoder, the exercise checkers."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from checker_support import not_answered, verdict
from factories import history_batch, walk_split
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import PAD_ID
from course_lib.data import evaluation_batches, training_windows
from course_lib.exercises.generative import check_next_token_mask, check_quantize_level
from course_lib.metrics import evaluate
from course_lib.models.generative import (
    CodeTrie,
    GenerativeConfig,
    GenerativeRecommender,
    GenerativeShelf,
    add_disambiguation,
    beam_search,
    exhaustive_scores,
    quantize_level,
)
from course_lib.training import TrainConfig, fit

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def catalogues(draw):
    """Random unique codes (I, C) over random level sizes: a random trie."""
    levels = draw(st.integers(1, 3))
    sizes = tuple(draw(st.lists(st.integers(1, 4), min_size=levels, max_size=levels)))
    every = list(itertools.product(*(range(v) for v in sizes)))
    chosen = draw(st.lists(st.sampled_from(every), min_size=1, max_size=len(every), unique=True))
    return torch.tensor(chosen, dtype=torch.long), sizes


def table_decoder(codes: torch.Tensor, sizes: tuple[int, ...], batch: int, seed: int):
    """A 'decoder' whose next-token log-probabilities are a fixed random function of the prefix."""
    g = torch.Generator().manual_seed(seed)
    logits = {}

    def next_log_probs(prefixes: torch.Tensor) -> torch.Tensor:
        b, w, level = prefixes.shape
        out = torch.empty(b, w, sizes[level])
        for i in range(b):
            for j in range(w):
                key = (i, *prefixes[i, j].tolist())
                if key not in logits:
                    logits[key] = torch.log_softmax(3 * torch.randn(sizes[level], generator=g), -1)
                out[i, j] = logits[key]
        return out

    return next_log_probs


# ---- the trie --------------------------------------------------------------------------------
@PROPERTY
@given(catalogues(), st.integers(0, 10_000))
def test_the_next_token_mask_is_what_brute_force_finds(catalogue, seed):
    codes, sizes = catalogue
    trie = CodeTrie(codes, sizes)
    rng = random.Random(seed)
    for level in range(len(sizes)):
        prefixes = [tuple(codes[rng.randrange(len(codes)), :level].tolist()) for _ in range(3)]
        prefixes.append(tuple(rng.randrange(v) for v in sizes[:level]))  # perhaps no item's prefix
        mask = trie.next_token_mask(torch.tensor(prefixes, dtype=torch.long).reshape(len(prefixes), level))
        for row, prefix in enumerate(prefixes):
            allowed = {int(c[level]) for c in codes if tuple(c[:level].tolist()) == prefix}
            assert set(mask[row].nonzero()[:, 0].tolist()) == allowed


def test_items_of_finds_each_item_and_nothing_else():
    codes = torch.tensor([[0, 1], [1, 0], [2, 2], [0, 0]])
    trie = CodeTrie(codes, (3, 3))
    assert trie.items_of(codes).tolist() == [1, 2, 3, 4]
    assert trie.items_of(torch.tensor([[1, 1], [2, 0], [5, 0], [-1, 0]])).tolist() == [PAD_ID] * 4
    assert not trie.next_token_mask(torch.tensor([[7]])).any()  # a token outside the level: no item follows


# ---- beam search -----------------------------------------------------------------------------
@PROPERTY
@given(catalogues(), st.integers(1, 6), st.integers(0, 10_000))
def test_beam_search_only_yields_real_items_with_their_exact_scores(catalogue, beam, seed):
    codes, sizes = catalogue
    trie = CodeTrie(codes, sizes)
    decoder = table_decoder(codes, sizes, 2, seed)
    items, scores = beam_search(decoder, trie, batch_size=2, beam_size=beam)
    exact = exhaustive_scores(decoder, trie, batch_size=2)  # (B, I)
    for row in range(2):
        real = items[row][items[row] != PAD_ID]
        assert real.numel() == min(beam, len(codes)) and real.unique().numel() == real.numel()
        assert ((real >= 1) & (real <= len(codes))).all()
        torch.testing.assert_close(scores[row, : real.numel()], exact[row, real - 1])
        assert (scores[row, : real.numel()].diff() <= 0).all()  # best first


@PROPERTY
@given(catalogues(), st.integers(0, 10_000))
def test_a_beam_as_wide_as_the_catalogue_is_exhaustive_scoring(catalogue, seed):
    codes, sizes = catalogue
    trie = CodeTrie(codes, sizes)
    decoder = table_decoder(codes, sizes, 3, seed)
    items, scores = beam_search(decoder, trie, batch_size=3, beam_size=len(codes))
    exact = exhaustive_scores(decoder, trie, batch_size=3)
    ranked = exact.sort(dim=1, descending=True, stable=True)
    torch.testing.assert_close(scores, ranked.values)
    for row in range(3):  # the same items in the same order (up to exact ties in score)
        assert sorted(items[row].tolist()) == list(range(1, len(codes) + 1))
        torch.testing.assert_close(exact[row, items[row] - 1], ranked.values[row])


def test_excluded_items_never_come_out():
    codes = add_disambiguation(torch.randint(3, (30, 2), generator=torch.Generator().manual_seed(0)))
    trie = CodeTrie(codes)
    decoder = table_decoder(codes, trie.level_sizes, 2, 0)
    full, _ = beam_search(decoder, trie, batch_size=2, beam_size=30)
    exclude = full[:, :5]  # each user's five best
    items, _ = beam_search(decoder, trie, batch_size=2, beam_size=10, exclude=exclude)
    for row in range(2):
        assert not set(items[row].tolist()) & set(exclude[row].tolist())
        assert items[row].tolist() == [i for i in full[row].tolist() if i not in exclude[row].tolist()][:10]


@PROPERTY
@given(catalogues(), st.integers(0, 10_000))
def test_a_shelf_of_some_items_yields_only_them_with_their_full_catalogue_scores(catalogue, seed):
    codes, sizes = catalogue
    trie = CodeTrie(codes, sizes)
    rng = random.Random(seed)
    shelf_items = torch.tensor(sorted(rng.sample(range(1, len(codes) + 1), rng.randint(1, len(codes)))))
    shelf = trie.subset(shelf_items)
    decoder = table_decoder(codes, sizes, 2, seed)
    items, scores = beam_search(decoder, shelf, batch_size=2, beam_size=len(codes))
    exact = exhaustive_scores(decoder, trie, batch_size=2)
    for row in range(2):
        real = items[row][items[row] != PAD_ID]
        assert sorted(real.tolist()) == shelf_items.tolist()
        torch.testing.assert_close(scores[row, : real.numel()], exact[row, real - 1])


def test_a_bad_shelf_gets_a_clear_error():
    trie = CodeTrie(torch.tensor([[0], [1], [2]]))
    with pytest.raises(ValueError, match="all in this trie"):
        trie.subset(torch.tensor([2, 9]))
    with pytest.raises(ValueError, match="non-empty"):
        trie.subset(torch.tensor([], dtype=torch.long))


@pytest.mark.parametrize("beam", [0, -1, True, 2.0])
def test_a_bad_beam_size_gets_a_clear_error(beam):
    trie = CodeTrie(torch.tensor([[0], [1]]))
    with pytest.raises(ValueError, match=r"beam_size must be an int >= 1"):
        beam_search(lambda p: torch.zeros(*p.shape[:2], 2), trie, batch_size=1, beam_size=beam)
    with pytest.raises(ValueError, match=r"beam_size"):
        GenerativeConfig(level_sizes=(2,), beam_size=beam)


def test_bad_codes_and_configs_get_a_clear_error():
    with pytest.raises(ValueError, match="share one code"):
        CodeTrie(torch.tensor([[0, 1], [0, 1]]))
    with pytest.raises(ValueError, match=r"integer tensor \(I, C\)"):
        CodeTrie(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"integer tensor \(I, C\)"):
        CodeTrie(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least one item"):
        CodeTrie(torch.zeros(0, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"level_sizes\[l\] - 1"):
        CodeTrie(torch.tensor([[0, 3]]), (2, 2))
    with pytest.raises(ValueError, match="names 3"):
        GenerativeRecommender(GenerativeConfig(level_sizes=(2, 2, 2)), torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="already a whole code"):
        CodeTrie(torch.tensor([[0], [1]])).next_token_mask(torch.tensor([[0]]))
    for sizes in [(), (0, 2), [2, 2], (2, True)]:
        with pytest.raises(ValueError, match="level_sizes must be a non-empty tuple"):
            GenerativeConfig(level_sizes=sizes)


# ---- the decoder -----------------------------------------------------------------------------
def tiny_model(seed: int = 0, *, items: int = 20, beam: int = 5, dropout: float = 0.0) -> GenerativeRecommender:
    g = torch.Generator().manual_seed(seed)
    codes = add_disambiguation(torch.randint(4, (items, 2), generator=g))
    sizes = tuple(int(v) + 1 for v in codes.max(0).values)
    torch.manual_seed(seed)
    config = GenerativeConfig(level_sizes=sizes, max_len=6, d_model=16, n_heads=2, n_layers=2, dropout=dropout, beam_size=beam)
    return GenerativeRecommender(config, codes)


@pytest.mark.parametrize("seed", range(3))
def test_the_decoder_is_causal(seed):
    model = tiny_model(seed).eval()
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(1, 21, (3, 7), generator=g)
    items[0, :2] = PAD_ID
    changed = items.clone()
    changed[:, 4:] = torch.randint(1, 21, (3, 3), generator=g)
    with torch.no_grad():
        a, b = model(items), model(changed)  # (B, n, C + 1, D)
    torch.testing.assert_close(a[:, :4], b[:, :4])  # nothing before item 4 changes
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("seed", range(3))
def test_cached_decoding_equals_teacher_forcing(seed):
    model = tiny_model(seed).eval()
    g = torch.Generator().manual_seed(seed + 10)
    history = torch.randint(1, 21, (4, 6), generator=g)
    history[1, :3] = PAD_ID
    target = torch.randint(1, 21, (4,), generator=g)
    with torch.no_grad():
        hidden = model(torch.cat([history, target[:, None]], 1))[:, -1]  # (B, C + 1, D)
        decode = model.decoding(history)
        codes = model.trie.codes[target - 1]  # (B, C)
        for level, head in enumerate(model.heads):
            expected = torch.log_softmax(head(hidden[:, level]), -1)
            torch.testing.assert_close(decode(codes[:, None, :level])[:, 0], expected, atol=1e-5, rtol=1e-5)


def test_the_models_beam_as_wide_as_the_catalogue_is_exhaustive():
    model = tiny_model(1, items=15, beam=15).eval()
    history = torch.randint(1, 16, (3, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        decode = model.decoding(history)
        items, scores = beam_search(decode, model.trie, batch_size=3, beam_size=15)
        exact = exhaustive_scores(decode, model.trie, batch_size=3)
    torch.testing.assert_close(scores, exact.sort(dim=1, descending=True).values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(exact.gather(1, items - 1), scores, atol=1e-5, rtol=1e-5)


def test_score_all_gives_the_beam_its_scores_and_every_other_item_minus_infinity():
    model = tiny_model(2, beam=4).eval()
    batch = history_batch(torch.randint(1, 21, (3, 6), generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        items, scores = model.recommend(batch)
        all_scores = model.score_all(batch)
    assert all_scores.shape == (3, 20)
    assert torch.isfinite(all_scores).sum(1).tolist() == [4, 4, 4]
    torch.testing.assert_close(all_scores.gather(1, items - 1), scores)
    assert not (items[..., None] == batch.history[:, None, :]).any()  # seen items are never recommended


def test_the_shelf_model_recommends_only_shelf_items():
    model = tiny_model(3, beam=4).eval()
    batch = history_batch(torch.randint(1, 21, (3, 6), generator=torch.Generator().manual_seed(1)))
    shelf = GenerativeShelf(model, torch.tensor([2, 5, 7, 11, 13, 17, 19]))
    with torch.no_grad():
        scores = shelf.score_all(batch)
    finite = torch.isfinite(scores).nonzero()[:, 1] + 1
    assert finite.numel() > 0 and set(finite.tolist()) <= {2, 5, 7, 11, 13, 17, 19}


def test_evaluate_ranks_a_target_by_its_place_in_the_beam_and_misses_the_rest():
    model = tiny_model(5, beam=6).eval()
    g = torch.Generator().manual_seed(2)
    history = torch.randint(1, 21, (40, 6), generator=g)
    targets = torch.randint(1, 21, (40,), generator=g)
    keep = ~(history == targets[:, None]).any(1)  # users whose target is a seen item are dropped by evaluate anyway
    batch = history_batch(history[keep], targets=targets[keep], seen=history[keep])
    ranks = evaluate(model, [batch]).ranks
    with torch.no_grad():
        items, _ = model.recommend(batch)  # (B, W), seen items already dropped
    hits = 0
    for row in range(len(batch)):
        listed = items[row].tolist()
        if int(batch.targets[row]) in listed:
            hits += 1
            assert ranks[row] == listed.index(int(batch.targets[row])) + 1  # its place in the list
        else:
            assert ranks[row] > model.config.beam_size  # a miss for every K <= W
    assert 0 < hits < len(batch)


def test_training_lowers_the_loss_and_beats_chance_on_a_learnable_walk():
    split = walk_split(users=40, items=20, events=15)  # user u walks u+1, u+2, ...: the next item is determined
    codes = add_disambiguation(torch.arange(20)[:, None] // 4)  # 5 groups of 4 items
    sizes = tuple(int(v) + 1 for v in codes.max(0).values)
    torch.manual_seed(0)
    model = GenerativeRecommender(GenerativeConfig(level_sizes=sizes, max_len=6, d_model=32, n_layers=1, beam_size=5), codes)
    valid = evaluation_batches(split, "valid", max_len=6)
    result = fit(model, training_windows(split, max_len=6), valid,
                 config=TrainConfig(epochs=15, lr=1e-2, batch_size=32, progress=False), device="cpu")
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert evaluate(model, evaluation_batches(split, "test", max_len=6))["HR@5"] > 0.9  # chance: 5 / 18


def test_the_same_seed_gives_the_same_recommendations():
    batch = history_batch(torch.randint(1, 21, (3, 6), generator=torch.Generator().manual_seed(0)))
    a, b = (tiny_model(4).eval().recommend(batch) for _ in range(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_decoding_in_training_mode_and_bad_histories_get_a_clear_error():
    model = tiny_model(0, dropout=0.1)
    with pytest.raises(RuntimeError, match=r"model.eval\(\)"):
        model.decoding(torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="at most max_len = 6"):
        model(torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"item ids \(B, n\) of dtype long"):
        model(torch.ones(1, 3))
    with pytest.raises(ValueError, match="seq_targets"):
        model.loss(history_batch(torch.ones(2, 3, dtype=torch.long)))


# ---- the exercise checkers ------------------------------------------------------------------
def right_quantize_level(residuals, codebook):
    return quantize_level(residuals, codebook)


def right_next_token_mask(codes, prefix, vocab_size):
    match = (codes[:, : len(prefix)] == prefix).all(dim=1)
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[codes[match, len(prefix)]] = True
    return mask


def dot_product_level(residuals, codebook):
    codes = (residuals @ codebook.T).argmax(1)
    return codes, residuals - codebook[codes]


def unchanged_residuals(residuals, codebook):
    return quantize_level(residuals, codebook)[0], residuals


def reconstruction_not_residual(residuals, codebook):
    codes = quantize_level(residuals, codebook)[0]
    return codes, codebook[codes]


def any_item_at_the_level(codes, prefix, vocab_size):
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[codes[:, len(prefix)]] = True
    return mask


def last_token_only(codes, prefix, vocab_size):
    if len(prefix) == 0:
        return right_next_token_mask(codes, prefix, vocab_size)
    match = codes[:, len(prefix) - 1] == prefix[-1]
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    mask[codes[match, len(prefix)]] = True
    return mask


def float_mask(codes, prefix, vocab_size):
    return right_next_token_mask(codes, prefix, vocab_size).float()


def forgot_return(*args):
    total = sum(1 for _ in args)  # noqa: F841


@pytest.mark.parametrize("checker, right", [(check_quantize_level, right_quantize_level),
                                            (check_next_token_mask, right_next_token_mask)])
def test_a_right_answer_passes_and_the_placeholder_is_not_answered(capsys, checker, right):
    assert "✅" in verdict(capsys, checker, right)
    assert "⏳" in verdict(capsys, checker, not_answered)
    assert "⏳" in verdict(capsys, checker, None)
    out = verdict(capsys, checker, forgot_return)
    assert "❌" in out and "did you forget `return`?" in out


@pytest.mark.parametrize("checker, wrong, hint", [
    (check_quantize_level, dot_product_level, "largest dot product"),
    (check_quantize_level, unchanged_residuals, "unchanged"),
    (check_quantize_level, reconstruction_not_residual, "the centroid itself"),
    (check_quantize_level, lambda r, c: quantize_level(r, c)[0], "return a pair"),
    (check_next_token_mask, any_item_at_the_level, "every token used at level 1"),
    (check_next_token_mask, last_token_only, "Compare the whole prefix"),
    (check_next_token_mask, float_mask, "bool mask"),
    (check_next_token_mask, lambda codes, prefix, v: torch.ones(v + 1, dtype=torch.bool), "shape (vocab_size,)"),
])
def test_wrong_answers_get_their_hint(capsys, checker, wrong, hint):
    out = verdict(capsys, checker, wrong)
    assert "❌" in out and hint in out, out
