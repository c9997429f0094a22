"""Retrieve then re-rank: a retriever's top-K per user, new scores for those K, per-user ranks for the shared metrics.

A re-ranker only orders the K candidates the retriever kept. Its per-user rank of the target is
honest when built like this: a target inside the list gets 1 + the number of *other* candidates
scoring at least as high (ties pessimistic, as everywhere in the course); a target the retriever
missed counts as a miss at the bottom of the ranking (rank = every item the user has not seen).
HR@K' and NDCG@K' are then exact for every K' <= K, and HR@K of the retriever is the ceiling no
re-ranker can pass. MRR and AUC are not comparable with full-ranking numbers (a miss is not ranked
where the model would have put it), so :func:`list_evaluation` leaves AUC out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ...data.batch import Batch
from ...metrics import Evaluation, exclusion_mask
from ...modes import eval_mode


@torch.no_grad()
def top_candidates(
    retriever: torch.nn.Module, batches: Sequence[Batch], k: int, *, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Each user's K best unseen items by the retriever, best first.

    Returns:
        ``candidates`` (U, K) item ids and ``scores`` (U, K) the retriever's scores, users in batch order.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1 (candidates kept per user), got {k!r}.")
    candidates, scores = [], []
    with eval_mode(retriever.to(device)):
        for batch in batches:
            batch = batch.to(device)
            seen = torch.zeros(len(batch), retriever.num_items + 1, dtype=torch.bool, device=device)
            seen.scatter_(1, batch.excluded, True)  # (B, I + 1); the target is not known here, so it is never spared
            all_scores = retriever.score_all(batch).float().masked_fill(seen[:, 1:], -torch.inf)  # (B, I)
            top = all_scores.topk(k, dim=1)
            candidates.append((top.indices + 1).cpu())
            scores.append(top.values.cpu())
    return torch.cat(candidates), torch.cat(scores)


def list_evaluation(batches: Sequence[Batch], candidates: Tensor, scores: Tensor, num_items: int) -> Evaluation:
    """Per-user ranks of each target when only ``candidates`` (U, K) are ranked, by ``scores`` (U, K).

    Args:
        batches: the evaluation batches the candidates were drawn for (their users, targets, seen items).
        candidates: (U, K) item ids per user, users in batch order.
        scores: (U, K) finite scores of those candidates (higher = better).
        num_items: I.

    Returns:
        An :class:`Evaluation` with ``aucs=None``; a target outside the list has rank
        "every unseen item" (a miss at any K <= I).
    """
    users = torch.cat([b.users for b in batches])
    targets = torch.cat([b.targets for b in batches])
    if candidates.shape != scores.shape or candidates.shape[0] != users.numel():
        raise ValueError(f"candidates {tuple(candidates.shape)} and scores {tuple(scores.shape)} must both be "
                         f"(U={users.numel()}, K), one row per evaluated user.")
    if candidates.numel() and (candidates.min() < 1 or candidates.max() > num_items):
        raise ValueError(f"candidates must be catalogue item ids in 1..{num_items}, got {int(candidates.min())}..{int(candidates.max())}.")
    if not torch.isfinite(scores).all():
        raise ValueError("re-ranking scores must be finite.")
    removed = torch.cat([exclusion_mask(b.excluded, b.targets, num_items) for b in batches])  # (U, I), True = seen, not ranked
    unseen = (~removed).sum(dim=1)  # (U,)
    candidate_seen = removed.gather(1, candidates - 1)  # (U, K): a seen candidate is not ranked either
    hit = candidates == targets[:, None]  # (U, K)
    inside = hit.any(dim=1)
    target_score = (scores * hit).sum(dim=1, keepdim=True)  # (U, 1); 0 where missed (unused)
    in_list_rank = ((scores >= target_score) & ~hit & ~candidate_seen).sum(dim=1) + 1  # (U,) pessimistic among the K
    ranks = torch.where(inside, in_list_rank, unseen)
    order = scores.argsort(dim=1, descending=True, stable=True)  # (U, K): best first
    top = candidates.gather(1, order)[:, :20]  # each user's re-ranked list, at most 20 kept
    return Evaluation(ranks.long(), None, users, num_items, targets=targets, top_items=top)
