"""Notebook 17's language-model ranker: prompts, scoring, save/load, constrained decoding, re-ranking ranks, checkers."""

from __future__ import annotations

import pytest
import torch
from checker_support import not_answered, verdict
from factories import random_split

from course_lib.bench.recipes.lm_ranker import (
    LMConfig,
    batch_prompts,
    build_gpt2,
    catalogue_pairs,
    catalogue_tokenizer,
    fit_lm,
    load_lm,
    save_lm,
    training_pairs,
)
from course_lib.bench.recipes.reranking import list_evaluation, top_candidates
from course_lib.data import evaluation_batches
from course_lib.metrics import target_ranks
from course_lib.models import SASRec, SASRecConfig
from course_lib.models.lm_ranker.constrained import TitleTrie, generate_titles
from course_lib.models.lm_ranker.prompts import PromptFormat, build_prompt, item_text, training_text
from course_lib.models.lm_ranker.scoring import (
    candidate_log_likelihoods,
    encode_words,
    sequence_log_likelihoods,
    shared_prompt_log_likelihoods,
)
from course_lib.models.lm_ranker.tokenizer import train_word_tokenizer

TITLES = ["Star Wars", "Return of the Jedi", "Toy Story", "Star Trek", "Heat", "The Jedi Story", "Wars of Heat", "Crumb"]
GENRES = [["Action", "Sci-Fi"], ["Action", "Sci-Fi"], ["Animation"], ["Sci-Fi"], ["Crime"], ["Drama"], ["War"], ["Documentary"]]


@pytest.fixture(scope="module")
def tokenizer():
    return catalogue_tokenizer(TITLES, GENRES)


def tiny_lm(tokenizer, seed: int = 0):
    return build_gpt2(tokenizer, LMConfig(n_layer=2, n_embd=16, n_head=2, seed=seed)).eval()


# --------------------------------------------------------------------------- prompts


def test_prompts_by_hand():
    history = ["Toy Story", "Heat", "Crumb", "Star Wars"]
    assert build_prompt(history, PromptFormat(max_items=3)) == "watched : Heat ; Crumb ; Star Wars ; next :"
    assert build_prompt(history, PromptFormat(max_items=2, order="newest_first")) == "watched : Star Wars ; Crumb ; next :"
    genres = [["Animation"], ["Crime"], ["Documentary"], ["Action", "Sci-Fi"]]
    assert (build_prompt(history, PromptFormat(max_items=2, with_genres=True), genres)
            == "watched : Crumb [ Documentary ] ; Star Wars [ Action Sci-Fi ] ; next :")
    assert build_prompt(["Heat"]) == "watched : Heat ; next :"
    assert training_text("watched : Heat ; next :", "Crumb") == "watched : Heat ; next : Crumb ;"
    assert item_text("  Heat ", ["Crime"]) == "Heat"  # genres only when asked for


@pytest.mark.parametrize("call, error, words", [
    (lambda: build_prompt([]), ValueError, "empty history"),
    (lambda: build_prompt("Heat"), TypeError, "not one string"),
    (lambda: build_prompt(["Heat"], PromptFormat(with_genres=True)), ValueError, "one genre list per title"),
    (lambda: build_prompt(["Heat; Crumb"]), ValueError, "separator"),
    (lambda: build_prompt([""]), ValueError, "non-empty"),
    (lambda: PromptFormat(max_items=0), ValueError, "max_items"),
    (lambda: PromptFormat(order="random"), ValueError, "order"),
    (lambda: training_text("watched : Heat ;", "Crumb"), ValueError, "ends with"),
])
def test_prompt_bad_inputs(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_tokenizer_words_and_unknowns(tokenizer):
    ids = encode_words(tokenizer, "watched : Star Wars ; next :")
    assert tokenizer.convert_ids_to_tokens(ids) == ["watched", ":", "star", "wars", ";", "next", ":"]
    assert tokenizer.convert_ids_to_tokens(encode_words(tokenizer, "Godzilla"))[0] == "[UNK]"
    with pytest.raises(ValueError, match="end marker"):
        train_word_tokenizer(["Heat", "Crumb"])
    with pytest.raises(ValueError, match="non-empty list"):
        train_word_tokenizer([])


# --------------------------------------------------------------------------- scoring


def manual_log_likelihood(model, tokenizer, prompt: str, title: str) -> float:
    """Sum of log-probabilities of the title's tokens and ';' from one plain forward pass over the whole text."""
    tokens = encode_words(tokenizer, f"{prompt} {title} ;")
    start = len(encode_words(tokenizer, prompt))
    with torch.no_grad():
        log_probs = model(input_ids=torch.tensor([tokens])).logits[0].double().log_softmax(-1)  # (T, V)
    return sum(float(log_probs[t - 1, tokens[t]]) for t in range(start, len(tokens)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_candidate_log_likelihood_equals_a_manual_sum(tokenizer, seed):
    model = tiny_lm(tokenizer, seed)
    prompts = ["watched : Heat ; next :", "watched : Toy Story ; Star Wars ; Crumb ; next :"]  # different lengths: padding
    candidates = [["Star Wars", "Crumb", "Return of the Jedi"], ["The Jedi Story", "Heat", "Star Trek"]]
    got = candidate_log_likelihoods(model, tokenizer, prompts, candidates, batch_size=1 + seed % 2)
    expected = torch.tensor([[manual_log_likelihood(model, tokenizer, p, t) for t in c] for p, c in zip(prompts, candidates)])
    torch.testing.assert_close(got, expected.float(), atol=1e-4, rtol=1e-4)
    plain = sequence_log_likelihoods(model, [encode_words(tokenizer, p) for p in prompts for _ in range(3)],
                                     [encode_words(tokenizer, t + " ;") for c in candidates for t in c]).view(2, 3)
    torch.testing.assert_close(plain, expected.float(), atol=1e-4, rtol=1e-4)


def test_chunking_and_padding_change_nothing(tokenizer):
    model = tiny_lm(tokenizer, 5)
    prompts = [encode_words(tokenizer, p) for p in ["watched : Heat ; next :", "watched : Crumb ; Toy Story ; next :"]]
    candidates = [[encode_words(tokenizer, t + " ;") for t in TITLES]] * 2
    whole = shared_prompt_log_likelihoods(model, prompts, candidates)
    torch.testing.assert_close(shared_prompt_log_likelihoods(model, prompts, candidates, chunk=3), whole)
    alone = shared_prompt_log_likelihoods(model, prompts[:1], candidates[:1])  # no prompt padding at all
    torch.testing.assert_close(alone[0], whole[0], atol=1e-5, rtol=1e-5)


def test_scores_are_log_probabilities_of_a_distribution(tokenizer):
    """Over every continuation of one token plus ';', the probabilities sum to at most 1 (here: the share ending there)."""
    model = tiny_lm(tokenizer, 3)
    words = [w for w in tokenizer.get_vocab() if w not in ("[PAD]", "[UNK]", ";")]
    scores = candidate_log_likelihoods(model, tokenizer, ["watched : Heat ; next :"], [words])
    assert float(scores.exp().sum()) < 1.0 and bool((scores < 0).all())


def test_saved_and_reloaded_lm_gives_identical_scores(tokenizer, tmp_path):
    model = tiny_lm(tokenizer, 1)
    fit_lm(model, tokenizer, catalogue_pairs(TITLES, GENRES), LMConfig(n_layer=2, n_embd=16, n_head=2, epochs=1, batch_size=4))
    folder = save_lm(model, tokenizer, tmp_path / "lm")
    loaded, loaded_tokenizer = load_lm(folder)
    prompts, candidates = ["watched : Star Wars ; next :"], [TITLES]
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert torch.equal(candidate_log_likelihoods(loaded, loaded_tokenizer, prompts, candidates),
                       candidate_log_likelihoods(model, tokenizer, prompts, candidates))
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_lm(tmp_path / "nothing")


def test_training_lowers_the_loss(tokenizer):
    model = tiny_lm(tokenizer, 0)
    pairs = [("watched : Star Wars ; next :", "Return of the Jedi"), ("watched : Heat ; next :", "Crumb")] * 8
    before = candidate_log_likelihoods(model, tokenizer, [p for p, _ in pairs[:2]], [[t] for _, t in pairs[:2]])
    fit_lm(model, tokenizer, pairs, LMConfig(n_layer=2, n_embd=16, n_head=2, epochs=5, batch_size=4, lr=1e-2))
    after = candidate_log_likelihoods(model, tokenizer, [p for p, _ in pairs[:2]], [[t] for _, t in pairs[:2]])
    assert bool((after > before + 1.0).all())


@pytest.mark.parametrize("call, words", [
    (lambda m, t: candidate_log_likelihoods(m, t, ["watched : Heat ; next :"], [["Crumb"], ["Heat"]]), "one list of candidates"),
    (lambda m, t: candidate_log_likelihoods(m, t, ["a : next :", "b : next :"], [["Crumb"], ["Heat", "Crumb"]]), "same number"),
    (lambda m, t: candidate_log_likelihoods(m, t, [], []), "no prompts"),
    (lambda m, t: candidate_log_likelihoods(m, t, ["watched : Heat ; next :"], [[]]), "same number"),
    (lambda m, t: sequence_log_likelihoods(m, [[1]], [[]]), "at least one token"),
    (lambda m, t: generate_titles(m, t, []), "no prompts"),
    (lambda m, t: generate_titles(m, t, ["watched : Heat ; next :"], max_tokens=0), "max_tokens"),
    (lambda m, t: fit_lm(m, t, [], LMConfig()), "no training pairs"),
])
def test_scoring_bad_inputs(tokenizer, call, words):
    with pytest.raises(ValueError, match=words):
        call(tiny_lm(tokenizer), tokenizer)


def test_candidate_titles_must_be_lists_of_known_titles(tokenizer):
    model = tiny_lm(tokenizer)
    with pytest.raises(ValueError, match="'Godzilla' has words the tokenizer does not know"):
        candidate_log_likelihoods(model, tokenizer, ["watched : Heat ; next :"], [["Crumb", "Godzilla"]])
    with pytest.raises(TypeError, match="lists of titles"):
        candidate_log_likelihoods(model, tokenizer, ["watched : Heat ; next :"], ["Crumb"])  # a str, not a list of titles
    with pytest.raises(TypeError, match="list of str"):
        candidate_log_likelihoods(model, tokenizer, "watched : Heat ; next :", [["Crumb"]])


def test_lm_config_bad_inputs():
    with pytest.raises(ValueError, match="divisible"):
        LMConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="positive int"):
        LMConfig(epochs=0)


# --------------------------------------------------------------------------- constrained decoding


def test_trie_by_hand(tokenizer):
    trie = TitleTrie.from_titles(tokenizer, TITLES)
    star, wars, trek = (encode_words(tokenizer, w)[0] for w in ("star", "wars", "trek"))
    (end,) = encode_words(tokenizer, ";")
    assert set(trie.allowed([star])) == {wars, trek}
    assert trie.allowed([star, wars]) == [end]
    assert trie.allowed([wars, wars]) == []
    assert [star, wars] in trie and [star] not in trie and len(trie) == len(TITLES)
    with pytest.raises(ValueError, match="end token"):
        TitleTrie([[star, end]], end)
    with pytest.raises(ValueError, match="at least one title"):
        TitleTrie([], end)


@pytest.mark.parametrize("seed", range(6))
def test_constrained_decoding_never_names_an_item_outside_the_catalogue(tokenizer, seed):
    """Property: for random models and random prompts, every constrained title is a catalogue title."""
    g = torch.Generator().manual_seed(seed)
    model = tiny_lm(tokenizer, seed)
    with torch.no_grad():  # sharpen the random model so it prefers odd word sequences
        model.lm_head.weight.mul_(20)
    catalogue = TITLES[: 3 + seed % 5]
    trie = TitleTrie.from_titles(tokenizer, catalogue)
    prompts = [build_prompt([TITLES[int(i)] for i in torch.randint(0, len(TITLES), (3,), generator=g)]) for _ in range(8)]
    constrained = generate_titles(model, tokenizer, prompts, trie=trie, max_tokens=20)
    assert all(title in trie for title in constrained)
    named = {tokenizer.decode(t) for t in constrained}
    assert named <= {tokenizer.decode(encode_words(tokenizer, c)) for c in catalogue}


def test_free_greedy_decoding_equals_transformers_generate(tokenizer):
    model = tiny_lm(tokenizer, 4)
    prompt = "watched : Star Wars ; Heat ; next :"
    ours = generate_titles(model, tokenizer, [prompt], max_tokens=6)[0]
    ids = torch.tensor([encode_words(tokenizer, prompt)])
    (end,) = encode_words(tokenizer, ";")
    theirs = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                            eos_token_id=end, pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
    assert ours == [t for t in theirs if t != end][: len(ours)] and (len(ours) == 6 or theirs[len(ours)] == end)


# --------------------------------------------------------------------------- prompts from the split, re-ranking ranks


def test_training_pairs_use_training_events_only():
    split = random_split(users=6, items=len(TITLES), events=(6, 8), seed=0)
    pairs = training_pairs(split, TITLES, GENRES, PromptFormat(max_items=2), examples_per_user=2)
    for user in range(split.num_users):
        seq = split.train_sequence(user)
        targets = [TITLES[i - 1] for i in seq[-2:]]
        assert [t for p, t in pairs[2 * user: 2 * user + 2]] == targets
    trained_on = {TITLES[i - 1] for u in range(split.num_users) for i in split.train_sequence(u)}
    held = {TITLES[split.sequences[u][-1] - 1] for u in range(split.num_users)} - trained_on
    assert not held & {t for _, t in pairs}
    batch = evaluation_batches(split, "test")[0]
    prompts = batch_prompts(batch, TITLES, GENRES, PromptFormat(max_items=2))
    last = [TITLES[i - 1] for i in batch.history[0, -2:].tolist()]
    assert prompts[0] == build_prompt(last)


def test_list_evaluation_by_hand_and_against_full_ranking():
    split = random_split(users=20, items=30, events=(6, 9), seed=1)
    batches = evaluation_batches(split, "test")
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(split.num_items, max_len=50, d_model=8, n_heads=1, n_layers=1)).eval()
    candidates, scores = top_candidates(model, batches, 10)
    seen = torch.cat([b.excluded for b in batches])
    assert not any(set(c.tolist()) & (set(s.tolist()) - {0}) for c, s in zip(candidates, seen)), "seen items are never candidates"
    evaluation = list_evaluation(batches, candidates, scores, split.num_items)
    with torch.no_grad():
        full = torch.cat([model.score_all(b) for b in batches])
    reference = target_ranks(full, evaluation.targets, seen)  # the ordinary full ranking
    inside = reference <= 10
    assert torch.equal(evaluation.ranks[inside], reference[inside]) and bool((evaluation.ranks[~inside] > 10).all())
    # by hand: 3 candidates, the target second by score, tied with one other (pessimistic: below it)
    batch = evaluation_batches(split, "test")[0]
    one = [type(batch)(**{f: getattr(batch, f)[:1] if getattr(batch, f) is not None else None for f in batch.__dataclass_fields__})]
    target = int(one[0].targets[0])
    others = [i for i in range(1, 31) if i != target and i not in one[0].excluded[0].tolist()][:2]
    hand = list_evaluation(one, torch.tensor([[others[0], target, others[1]]]), torch.tensor([[3.0, 1.0, 1.0]]), 30)
    assert int(hand.ranks[0]) == 3
    with pytest.raises(ValueError, match="catalogue item ids"):
        list_evaluation(one, torch.tensor([[31, target, 1]]), torch.tensor([[3.0, 1.0, 1.0]]), 30)
    with pytest.raises(ValueError, match="one row per evaluated user"):
        list_evaluation(one, torch.tensor([[target]]), torch.tensor([[1.0, 2.0]]), 30)
    with pytest.raises(ValueError, match="k must be an int"):
        top_candidates(model, batches, 0)


# --------------------------------------------------------------------------- exercise checkers


def test_check_lora_forward(capsys):
    from course_lib.exercises.lm_ranker import check_lora_forward

    def right(x, w, b, a, bb, alpha, r):
        return x @ w.T + b + (alpha / r) * (x @ a.T) @ bb.T

    assert "passed" in verdict(capsys, check_lora_forward, right)
    assert "alpha / r" in verdict(capsys, check_lora_forward, lambda x, w, b, a, bb, alpha, r: x @ w.T + b + x @ a.T @ bb.T)
    assert "frozen layer alone" in verdict(capsys, check_lora_forward, lambda x, w, b, a, bb, alpha, r: x @ w.T + b)
    assert "not yet" in verdict(capsys, check_lora_forward, lambda x, w, b, a, bb, alpha, r: x @ w.T + (alpha / r) * x @ a.T @ bb.T)
    assert "not answered" in verdict(capsys, check_lora_forward, not_answered)


def test_check_candidate_log_likelihood(capsys):
    from course_lib.exercises.lm_ranker import check_candidate_log_likelihood

    def right(logits, tokens, start):
        lp = logits.log_softmax(-1)
        return sum(lp[t - 1, tokens[t]] for t in range(start, len(tokens)))

    def unshifted(logits, tokens, start):
        lp = logits.log_softmax(-1)
        return sum(lp[t, tokens[t]] for t in range(start, len(tokens)))

    def raw(logits, tokens, start):
        return sum(logits[t - 1, tokens[t]] for t in range(start, len(tokens)))

    def one_token_short(logits, tokens, start):
        lp = logits.log_softmax(-1)
        return sum(lp[t - 1, tokens[t]] for t in range(start, len(tokens) - 1))

    assert "passed" in verdict(capsys, check_candidate_log_likelihood, right)
    assert "predict token t + 1" in verdict(capsys, check_candidate_log_likelihood, unshifted)
    assert "log_softmax" in verdict(capsys, check_candidate_log_likelihood, raw)
    assert "not yet" in verdict(capsys, check_candidate_log_likelihood, one_token_short)
    assert "not answered" in verdict(capsys, check_candidate_log_likelihood, not_answered)
