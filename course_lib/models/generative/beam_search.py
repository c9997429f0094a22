"""Beam search constrained by a trie: a decoder that can only spell out real items.

    score(item) = sum_l log p(c_l | history, c_0 .. c_{l-1})      the log-probability of its whole code

At each level every kept prefix (a *beam*) is extended by every token the trie allows after
it (the others get ``-inf``), and the ``W`` best extensions (W = beam size) are kept. After
the last level every beam is a whole code, i.e. one item, with the score above. With W at
least the number of items, nothing is ever cut, so the ranking equals scoring every item's
code exhaustively (tested); a narrower beam trades that exactness for speed, and an item
that falls out of the beam gets no score at all.

The decoder is any ``next_log_probs(prefixes (B, W, l)) -> (B, W, V_l)`` log-probabilities of
level l's tokens (a function of whatever history it was built for), so the search can be
tested on tables of random numbers as well as run on the trained model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ...constants import PAD_ID
from .trie import CodeTrie

NextLogProbs = Callable[[Tensor], Tensor]  # prefixes (B, W, l) -> log-probabilities (B, W, V_l)


def beam_search(
    next_log_probs: NextLogProbs,
    trie: CodeTrie,
    *,
    batch_size: int,
    beam_size: int,
    exclude: Tensor | None = None,
    device: torch.device | str = "cpu",
    return_trace: bool = False,
) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
    """The ``beam_size`` best items for each of ``batch_size`` histories, best first.

    Args:
        next_log_probs: prefixes (B, W, l) long -> (B, W, V_l) log-probabilities of the next token.
        trie: the valid codes.
        batch_size: B.
        beam_size: W >= 1, prefixes kept per history.
        exclude: optional (B, S) item ids (``PAD_ID``-padded) that may not be returned (the user's
            seen items); they are dropped at the last level, before the best W are kept.
        device: where the prefixes live.
        return_trace: also return, per level, the kept prefixes (B, W, l + 1) and their scores (B, W).

    Returns:
        items (B, W) long, best first (``PAD_ID`` where fewer than W items are reachable), and
        scores (B, W), the summed log-probabilities (``-inf`` at ``PAD_ID`` slots); with
        ``return_trace`` also the trace.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be an int >= 1 (prefixes kept per user), got {beam_size!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    if exclude is not None and (not isinstance(exclude, Tensor) or exclude.ndim != 2 or exclude.shape[0] != batch_size):
        raise ValueError(f"exclude must be item ids (B = {batch_size}, S), got {getattr(exclude, 'shape', exclude)}.")
    prefixes = torch.zeros(batch_size, 1, 0, dtype=torch.long, device=device)  # (B, W=1, 0): the empty prefix
    scores = torch.zeros(batch_size, 1, device=device)  # (B, W)
    trace = []
    for level in range(trie.levels):
        log_probs = next_log_probs(prefixes)  # (B, W, V)
        width, vocab = prefixes.shape[1], trie.level_sizes[level]
        if log_probs.shape != (batch_size, width, vocab):
            raise ValueError(f"next_log_probs must return (B, W, V_{level}) = {(batch_size, width, vocab)}, got {tuple(log_probs.shape)}.")
        allowed = trie.next_token_mask(prefixes.reshape(batch_size * width, level)).reshape(batch_size, width, vocab)  # (B, W, V)
        candidates = scores[..., None] + log_probs.float().masked_fill(~allowed, -torch.inf)  # (B, W, V)
        if level == trie.levels - 1 and exclude is not None:
            whole = torch.cat([prefixes[:, :, None, :].expand(-1, -1, vocab, -1),
                               torch.arange(vocab, device=device).expand(batch_size, width, vocab)[..., None]], dim=-1)
            items = trie.items_of(whole.reshape(-1, level + 1)).reshape(batch_size, width, vocab)  # (B, W, V)
            banned = (items[..., None] == exclude[:, None, None, :]).any(dim=-1) & (items != PAD_ID)  # (B, W, V)
            candidates = candidates.masked_fill(banned, -torch.inf)
        flat = candidates.reshape(batch_size, width * vocab)  # (B, W * V)
        keep = min(beam_size, flat.shape[1])
        scores, index = flat.topk(keep, dim=1)  # (B, W'), best first; ties -> lower index first
        beam, token = index // vocab, index % vocab  # which prefix each came from, the token added
        prefixes = torch.cat([prefixes.gather(1, beam[..., None].expand(-1, -1, level)), token[..., None]], dim=2)
        if return_trace:
            trace.append((prefixes.clone(), scores.clone()))
    items = trie.items_of(prefixes.reshape(-1, trie.levels)).reshape(batch_size, -1)  # (B, W)
    items = items.masked_fill(torch.isinf(scores), PAD_ID)
    return (items, scores, trace) if return_trace else (items, scores)


def exhaustive_scores(next_log_probs: NextLogProbs, trie: CodeTrie, *, batch_size: int) -> Tensor:
    """The reference: every code's summed log-probability, token by token (B, N); column c = the trie's row c.

    Feeds every item's code prefixes to ``next_log_probs`` (W = I), so only for small catalogues.
    """
    codes = trie.codes  # (I, C)
    total = torch.zeros(batch_size, trie.num_items)
    for level in range(trie.levels):
        prefixes = codes[None, :, :level].expand(batch_size, -1, -1)  # (B, I, l)
        log_probs = next_log_probs(prefixes)  # (B, I, V)
        total = total + log_probs.float().cpu().gather(2, codes[None, :, level, None].expand(batch_size, -1, 1))[..., 0]
    return total
