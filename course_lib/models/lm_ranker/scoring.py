"""How likely a causal language model finds each candidate title after a prompt.

For a prompt with tokens :math:`p_1..p_m` and a candidate title with tokens :math:`c_1..c_n`
followed by the end marker :math:`c_{n+1}` = ``;``, the score is the log-likelihood

.. math::  \\log P(c \\mid p) = \\sum_{j=1}^{n+1} \\log \\operatorname{softmax}(z_{m+j-1})[c_j],

where :math:`z_t` are the logits the model gives at position :math:`t` (they predict token
:math:`t + 1`). The end marker is part of the sum, so "Star Wars" is scored as the whole title and
not as the first words of "Star Wars: Episode ...". A longer title multiplies more probabilities
below 1, which favours short titles; that is one of the LM ranker's biases, left as it is here.

Sequences are padded on the **left**, so every candidate's tokens end at the last position; the
position ids are counted from each sequence's first real token, so padding changes nothing (tested).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor

from .prompts import END


def encode_words(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` (no special tokens added)."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor, Tensor]:
    """Left-pad token-id lists into one batch.

    Returns:
        ``input_ids`` (B, T), ``attention_mask`` (B, T) with 1 = a real token, ``position_ids`` (B, T)
        counted from each sequence's first real token (0 at the padding).
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("every sequence needs at least one token.")
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, s in enumerate(sequences):
        ids[row, length - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
        mask[row, length - len(s):] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp_min(0)  # (B, T)
    return ids, mask, positions


def sequence_log_likelihoods(model: torch.nn.Module, prompts: Sequence[Sequence[int]], continuations: Sequence[Sequence[int]]) -> Tensor:
    """``log P(continuation | prompt)`` for each pair, summed over the continuation's tokens.

    Args:
        model: a Hugging Face causal LM (``model(input_ids, attention_mask, position_ids, logits_to_keep)``).
        prompts: token ids of each prompt (at least one token each).
        continuations: token ids of each continuation, the end marker included (at least one token each).

    Returns:
        (N,) float tensor of log-likelihoods (on the model's device).
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"one continuation per prompt: {len(prompts)} prompts, {len(continuations)} continuations.")
    if any(len(c) == 0 for c in continuations):
        raise ValueError("every continuation needs at least one token (the title and its end marker).")
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    ids, mask, positions = left_pad([list(p) + list(c) for p, c in zip(prompts, continuations)], pad_id)
    device = next(model.parameters()).device
    keep = max(len(c) for c in continuations) + 1  # logits at the last `keep` positions predict the continuations
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                   logits_to_keep=keep).logits  # (N, keep, V)
    log_probs = logits[:, :-1].float().log_softmax(dim=-1)  # (N, keep - 1, V): predictions of the last keep - 1 tokens
    targets = ids[:, -(keep - 1):].to(device)  # (N, keep - 1)
    token_scores = log_probs.gather(-1, targets[..., None])[..., 0]  # (N, keep - 1)
    lengths = torch.tensor([len(c) for c in continuations], device=device)  # (N,)
    inside = torch.arange(keep - 1, device=device)[None, :] >= (keep - 1 - lengths[:, None])  # (N, keep - 1)
    return (token_scores * inside).sum(dim=1)


@torch.no_grad()
def shared_prompt_log_likelihoods(model: torch.nn.Module, prompt_ids: Sequence[Sequence[int]],
                                  candidate_ids: Sequence[Sequence[Sequence[int]]], *, chunk: int = 2048) -> Tensor:
    """The same numbers as :func:`sequence_log_likelihoods`, reading each prompt once.

    The prompt runs through the model once, with ``use_cache=True``; its key/value cache is
    copied for each of the prompt's N candidates, which then run as short continuations (a causal
    model's prompt states do not depend on what follows). Candidates are padded on the right and
    run in chunks of similar length, so little work goes into padding.

    Args:
        model: a Hugging Face causal LM.
        prompt_ids: B token-id lists.
        candidate_ids: B lists of N token-id lists (each candidate title with its end marker).
        chunk: candidates per forward pass.

    Returns:
        (B, N) log-likelihoods.
    """
    n = len(candidate_ids[0])
    if n == 0 or any(len(c) != n for c in candidate_ids) or len(candidate_ids) != len(prompt_ids):
        raise ValueError("one list of N >= 1 candidates per prompt, the same N for every prompt.")
    flat = [list(c) for cands in candidate_ids for c in cands]  # B N candidates; row r belongs to prompt r // n
    if any(len(c) == 0 for c in flat):
        raise ValueError("every candidate needs at least one token (the title and its end marker).")
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    device = next(model.parameters()).device
    ids, mask, positions = left_pad(prompt_ids, pad_id)  # (B, P)
    first = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                  use_cache=True, logits_to_keep=1)
    first_log_probs = first.logits[:, -1].float().log_softmax(dim=-1)  # (B, V): the first title token
    out = torch.empty(len(flat), device=device)
    by_length = sorted(range(len(flat)), key=lambda r: len(flat[r]))
    for start in range(0, len(flat), chunk):
        rows = by_length[start:start + chunk]
        owner = torch.tensor([r // n for r in rows])  # (R,) the prompt of each candidate
        cache = copy.deepcopy(first.cache)
        cache.batch_select_indices(owner.to(device))  # the owner's keys/values, once per candidate
        length = len(flat[rows[-1]])  # the longest in this chunk (sorted by length)
        cand = torch.full((len(rows), length), pad_id, dtype=torch.long)
        cand_mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, r in enumerate(rows):
            cand[i, :len(flat[r])] = torch.as_tensor(flat[r])
            cand_mask[i, :len(flat[r])] = True
        full_mask = torch.cat([mask[owner], cand_mask.long()], dim=1)  # (R, P + C)
        cand_positions = positions[owner, -1:] + 1 + torch.arange(length)[None, :]  # (R, C)
        cand, cand_mask = cand.to(device), cand_mask.to(device)
        hidden = model.base_model(input_ids=cand, attention_mask=full_mask.to(device), position_ids=cand_positions.to(device),
                                  cache=cache).last_hidden_state  # (R, C, D): position j predicts candidate token j + 1
        first_token = first_log_probs[owner.to(device)].gather(1, cand[:, :1])[:, 0]  # (R,): log P(c_1 | prompt)
        follows = cand_mask[:, 1:]  # (R, C - 1): True where token j + 1 is a real candidate token
        logits = model.get_output_embeddings()(hidden[:, :-1][follows]).float()  # (T, V): only the T real positions
        rest = logits.gather(-1, cand[:, 1:][follows][:, None])[:, 0] - logits.logsumexp(dim=-1)  # (T,) log-probabilities
        token_scores = torch.zeros(follows.shape, dtype=rest.dtype, device=device).masked_scatter(follows, rest)  # (R, C - 1)
        out[torch.tensor(rows, device=device)] = first_token + token_scores.sum(dim=1)
    return out.view(len(prompt_ids), n)


@torch.no_grad()
def candidate_log_likelihoods(model: torch.nn.Module, tokenizer, prompts: Sequence[str], candidates: Sequence[Sequence[str]], *,
                              batch_size: int = 64) -> Tensor:
    """The log-likelihood of each candidate title after its user's prompt.

    Args:
        model: a Hugging Face causal LM (put in eval mode by the caller).
        tokenizer: its tokenizer (``tokenizer(text)["input_ids"]``).
        prompts: B prompts (``build_prompt``).
        candidates: B lists of N titles each.
        batch_size: prompts per forward pass (each with its N candidates).

    Returns:
        (B, N) float tensor: ``log P(title ; | prompt)``, computed by :func:`shared_prompt_log_likelihoods`.
    """
    if isinstance(prompts, str) or any(isinstance(c, str) or not all(isinstance(t, str) for t in c) for c in candidates):
        raise TypeError("prompts is a list of str and candidates a list of lists of titles (str), one list per prompt.")
    if len(prompts) != len(candidates):
        raise ValueError(f"one list of candidates per prompt: {len(prompts)} prompts, {len(candidates)} lists.")
    if not prompts:
        raise ValueError("no prompts to score.")
    n = len(candidates[0])
    if n == 0 or any(len(c) != n for c in candidates):
        raise ValueError("every prompt needs the same number N >= 1 of candidate titles.")
    end = encode_words(tokenizer, END)
    unknown = getattr(tokenizer, "unk_token_id", None)
    title_ids: dict[str, list[int]] = {}
    for titles in candidates:
        for title in titles:
            if title not in title_ids:
                title_ids[title] = encode_words(tokenizer, title) + end
                if unknown is not None and unknown in title_ids[title]:
                    raise ValueError(f"candidate {title!r} has words the tokenizer does not know: not a catalogue title? "
                                     "Train the tokenizer on every catalogue title (catalogue_tokenizer).")
    prompt_ids = [encode_words(tokenizer, p) for p in prompts]
    scores = [shared_prompt_log_likelihoods(model, prompt_ids[s:s + batch_size],
                                            [[title_ids[t] for t in titles] for titles in candidates[s:s + batch_size]])
              for s in range(0, len(prompts), batch_size)]
    return torch.cat(scores).cpu()
