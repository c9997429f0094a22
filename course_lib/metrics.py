"""The one evaluation path: full ranking over the whole catalogue.

For each user the model scores every item (``score_all(batch) -> (B, I)``; column
``c`` is item id ``c + 1``). Items in the user's input history are removed from the
ranking (the target itself is always ranked; see "Repeat targets" below). Ties are counted pessimistically: a target
tied with k other items ranks below all of them, so a model that gives every item the
same score ranks the target last, not first.

From the 1-based rank r of the target:

* HR@K = 1 if r <= K else 0
* NDCG@K = 1 / log2(r + 1) if r <= K else 0 (one relevant item, so the ideal DCG is 1)
* MRR = 1 / r (no cut-off)
* AUC = share of non-history items scored below the target, ties counting one half
  (the usual AUC with one positive; equals scikit-learn's ``roc_auc_score`` on the
  continuous scores, never on hard 0/1 predictions).

Repeat targets. When a user's target is also in their history (repeat consumption: a re-buy, a
re-watch), removing the other seen items but ranking the target would leave it the only seen item
in the list and give the answer away to any model that scores seen items high. :func:`evaluate`
therefore chooses one rule for the whole evaluation (``repeats``):

* ``"drop"`` (the default, for data without repeats such as MovieLens-100K and ShopWorld, where it
  changes nothing): users whose target is a seen item are left out, counted in
  :attr:`Evaluation.repeats_dropped` and announced by a warning;
* ``"rank_seen"`` (for data where repeats are normal): nothing is removed for anyone; every item,
  seen ones included, is ranked.

Beyond accuracy (each user's top K after removing the history, from :attr:`Evaluation.top_items`):

* coverage@K = share of the catalogue recommended to at least one user;
* popularity percentile@K = mean, over every recommended item, of the share of items with fewer
  training interactions (1 = only the most popular items, 0 = only the least);
* long-tail HR@K = HR@K over the users whose target is outside the 20% most-interacted items.

:func:`evaluate_sampled` ranks the target among 100 random negatives instead. It is here
only to show, in notebook 06, how sampled metrics inflate numbers and can reorder models.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Literal

import torch
from torch import Tensor

from .constants import PAD_ID
from .data.batch import Batch
from .modes import eval_mode
from .stats import Method, PairedDifference, paired_difference

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
Repeats = Literal["drop", "rank_seen"]
REPEAT_RULES: tuple[str, ...] = ("drop", "rank_seen")
TOP_LIST = 20  # how many recommended items per user an evaluation keeps (coverage and popularity of the top K <= 20)


def _check_scores(scores: Tensor, num_items: int | None = None) -> None:
    if not isinstance(scores, Tensor) or scores.ndim != 2:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a (B, I) tensor, got {shape}.")
    if num_items is not None and scores.shape[1] != num_items:
        raise ValueError(
            f"score_all must return one column per item, (B, I={num_items}); got {tuple(scores.shape)}. "
            "Column c is item id c + 1 (PAD_ID = 0 has no column)."
        )
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; a ranking is undefined.")


def exclusion_mask(excluded: Tensor, targets: Tensor, num_items: int) -> Tensor:
    """Boolean (B, I) mask, True where an item is removed from the ranking.

    Args:
        excluded: (B, S) item ids to remove (history / seen items), ``PAD_ID``-padded.
        targets: (B,) target item ids; never removed.
        num_items: I.

    Returns:
        Bool (B, I); column c is item id c + 1.
    """
    mask = torch.zeros(excluded.shape[0], num_items + 1, dtype=torch.bool, device=excluded.device)
    mask.scatter_(1, excluded, True)  # (B, I + 1), column = item id
    mask[:, PAD_ID] = False
    mask.scatter_(1, targets[:, None], False)
    return mask[:, 1:]  # (B, I)


def target_ranks(
    scores: Tensor, targets: Tensor, excluded: Tensor | None = None, *, ties: str = "pessimistic"
) -> Tensor:
    """1-based rank of each target among the non-excluded items.

    Args:
        scores: (B, I) scores; column c is item id c + 1.
        targets: (B,) target item ids in 1..I.
        excluded: (B, S) item ids removed from the ranking (``PAD_ID``-padded), or None.
        ties: ``"pessimistic"`` (the course's rule: the target ranks below every item it ties
            with) or ``"optimistic"`` (above them; only to compare with tools that do so).

    Returns:
        Long (B,): 1 + the number of other ranked items scoring >= the target (> for optimistic).
    """
    if ties not in ("pessimistic", "optimistic"):
        raise ValueError(f"ties must be 'pessimistic' or 'optimistic', got {ties!r}.")
    _check_scores(scores)
    num_items = scores.shape[1]
    if targets.min() < 1 or targets.max() > num_items:
        raise ValueError(f"targets must be item ids in 1..{num_items}, got range {targets.min()}..{targets.max()}.")
    target_scores = scores.gather(1, (targets - 1)[:, None])  # (B, 1)
    if ties == "optimistic":
        beats = scores > target_scores  # (B, I)
        beats.scatter_(1, (targets - 1)[:, None], True)  # the target counts itself once
    else:
        beats = scores >= target_scores  # (B, I); includes the target itself
    if excluded is not None:
        beats &= ~exclusion_mask(excluded, targets, num_items)
    return beats.sum(dim=1)  # rank = 1 (the target) + the other ranked items that beat it


def target_aucs(scores: Tensor, targets: Tensor, excluded: Tensor | None = None) -> Tensor:
    """Per-user AUC of the target against every non-excluded other item (ties count 1/2).

    Returns:
        Float64 (B,), on the CPU.
    """
    _check_scores(scores)
    num_items = scores.shape[1]
    target_scores = scores.gather(1, (targets - 1)[:, None])  # (B, 1)
    negatives = torch.ones_like(scores, dtype=torch.bool)
    negatives.scatter_(1, (targets - 1)[:, None], False)
    if excluded is not None:
        negatives &= ~exclusion_mask(excluded, targets, num_items)
    below = ((scores < target_scores) & negatives).sum(1).cpu().double()  # CPU: MPS has no float64
    tied = ((scores == target_scores) & negatives).sum(1).cpu().double()
    return (below + 0.5 * tied) / negatives.sum(1).clamp(min=1).cpu().double()


def coverage(top_items: Tensor, k: int, num_items: int) -> float:
    """Catalogue coverage@K: the share of the I items that appear in at least one user's top K."""
    _check_top(top_items, k)
    return top_items[:, :k].unique().numel() / num_items


def _popularity_percentiles(item_counts: Tensor) -> Tensor:
    """(I + 1,) float64: the share of the I items with fewer training interactions (0 = least popular)."""
    counts = item_counts[1:].double().cpu()  # (I,)
    below = (counts[None, :] < counts[:, None]).sum(dim=1).double() / counts.numel()  # (I,)
    return torch.cat([torch.zeros(1, dtype=torch.float64), below])  # PAD_ID at 0


def popularity_percentile(top_items: Tensor, k: int, item_counts: Tensor) -> float:
    """Mean popularity percentile of the recommended items: near 1 = only hits, near 0 = only the long tail.

    An item's percentile is the share of the catalogue with fewer training interactions; the mean runs
    over every user's top K. Popularity recommends the head (close to 1); a model that finds the long
    tail scores lower.
    """
    _check_top(top_items, k)
    return _popularity_percentiles(item_counts)[top_items[:, :k].cpu()].mean().item()


def long_tail_items(item_counts: Tensor, head_share: float = 0.2) -> Tensor:
    """(I + 1,) bool: True for items outside the head, the ``ceil(head_share * I)`` most-interacted items.

    Ties at the border are broken by item id (the lower id joins the head), so the head has exactly that size.
    """
    counts = item_counts[1:].double().cpu()  # (I,)
    n_head = math.ceil(head_share * counts.numel())
    order = sorted(range(counts.numel()), key=lambda i: (-counts[i].item(), i))  # most popular first, then by id
    tail = torch.ones(counts.numel() + 1, dtype=torch.bool)
    tail[PAD_ID] = False
    tail[torch.tensor(order[:n_head], dtype=torch.long) + 1] = False
    return tail


def long_tail_hit_rate(ranks: Tensor, targets: Tensor, k: int, item_counts: Tensor, head_share: float = 0.2) -> float:
    """HR@K over the users whose target is a long-tail item (outside the top ``head_share`` of the catalogue).

    A model can raise HR@K by recommending hits; this asks whether it also finds the rarer items users
    go on to choose. NaN when no target is in the long tail.
    """
    in_tail = long_tail_items(item_counts, head_share)[targets.cpu()]  # (U,)
    if not in_tail.any():
        return math.nan
    return hit_rate(ranks.cpu()[in_tail], k)


def _check_top(top_items: Tensor, k: int) -> None:
    if top_items.ndim != 2 or not 1 <= k <= top_items.shape[1]:
        raise ValueError(f"top_items must be (U, K) with K >= k; got shape {tuple(top_items.shape)} for k={k}.")


def hit_rate(ranks: Tensor, k: int) -> float:
    """HR@K: share of users whose target ranks in the top K."""
    return (ranks.cpu() <= k).double().mean().item()


def ndcg(ranks: Tensor, k: int) -> float:
    """NDCG@K with one relevant item: mean of 1 / log2(rank + 1) over ranks <= K."""
    ranks = ranks.cpu().double()
    gains = 1.0 / torch.log2(ranks + 1.0)
    return torch.where(ranks <= k, gains, torch.zeros_like(gains)).mean().item()


def precision_recall_f1(ranks: Tensor, k: int) -> dict[str, float]:
    """Precision@K, Recall@K and F1@K with one relevant item per user, averaged over users.

    A top-K list holds K items and the user has one relevant item, so for each user
    Precision@K = [r <= K] / K, Recall@K = [r <= K] and F1@K = 2PR / (P + R) = 2 [r <= K] / (K + 1):
    all three are HR@K rescaled, and add nothing to it for ranking one target.
    """
    hit_rate_k = hit_rate(ranks, k)
    return {f"Precision@{k}": hit_rate_k / k, f"Recall@{k}": hit_rate_k, f"F1@{k}": 2 * hit_rate_k / (k + 1)}


def mrr(ranks: Tensor) -> float:
    """MRR: mean of 1 / rank (no cut-off)."""
    return (1.0 / ranks.cpu().double()).mean().item()


@dataclass(frozen=True)
class Evaluation:
    """Per-user ranks (and AUCs) from one evaluation pass, with the summary metrics."""

    ranks: Tensor  # (U,) long, pessimistic 1-based rank of each user's target (CPU)
    aucs: Tensor | None  # (U,) float64 per-user AUC, None for sampled evaluation
    users: Tensor  # (U,) long, the user index of each row
    num_candidates: int  # items each target was ranked against (I, or 1 + sampled negatives)
    targets: Tensor | None = None  # (U,) long, each user's target item id (full ranking only)
    top_items: Tensor | None = None  # (U, TOP_LIST) long, each user's recommended item ids, best first (full ranking only)
    repeats_dropped: int = 0  # users left out because their target was a seen item (repeats="drop")

    def beyond_accuracy(self, item_counts: Tensor, k: int = 10) -> dict[str, float]:
        """What the top-K lists look like beyond hitting the target (see :func:`coverage` and the two below).

        Args:
            item_counts: (I + 1,) training interactions per item id (entry ``PAD_ID`` ignored), e.g.
                ``torch.from_numpy(split.train_item_counts())``.
            k: the list length K (at most ``TOP_LIST``).

        Returns:
            ``{"coverage@K", "popularity percentile@K", "long-tail HR@K"}``.
        """
        if self.top_items is None or self.targets is None:
            raise ValueError("beyond-accuracy metrics need a full-ranking evaluation (evaluate), not a sampled one.")
        return {
            f"coverage@{k}": coverage(self.top_items, k, self.num_candidates),
            f"popularity percentile@{k}": popularity_percentile(self.top_items, k, item_counts),
            f"long-tail HR@{k}": long_tail_hit_rate(self.ranks, self.targets, k, item_counts),
        }

    def metrics(self, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
        """``{"HR@K": ..., "NDCG@K": ..., "MRR": ..., "AUC": ...}`` averaged over users."""
        out: dict[str, float] = {}
        for k in ks:
            out[f"HR@{k}"] = hit_rate(self.ranks, k)
        for k in ks:
            out[f"NDCG@{k}"] = ndcg(self.ranks, k)
        out["MRR"] = mrr(self.ranks)
        if self.aucs is not None:
            out["AUC"] = self.aucs.mean().item()
        return out

    def __getitem__(self, name: str) -> float:
        """A metric by name, e.g. ``evaluation["NDCG@10"]``."""
        return self.per_user(name).mean().item()

    def per_user(self, name: str) -> Tensor:
        """One value per user (U,) float64 of a metric: HR@K (0/1), NDCG@K, MRR or AUC; its mean is the metric."""
        ranks = self.ranks.cpu().double()
        if name == "MRR":
            return 1.0 / ranks
        if name == "AUC":
            if self.aucs is None:
                raise KeyError("AUC is not defined for a sampled evaluation (aucs is None).")
            return self.aucs.cpu().double()
        kind, _, k = name.partition("@")
        if kind not in ("HR", "NDCG") or not k.isdigit():
            raise KeyError(f"unknown metric {name!r}; use 'HR@K', 'NDCG@K', 'MRR' or 'AUC'.")
        inside = ranks <= int(k)
        if kind == "HR":
            return inside.double()
        return torch.where(inside, 1.0 / torch.log2(ranks + 1.0), torch.zeros_like(ranks))


def compare(
    a: Evaluation, b: Evaluation, metric: str = "NDCG@10", *, method: Method = "bootstrap", seed: int = 0
) -> PairedDifference:
    """The per-user paired difference ``a - b`` of ``metric`` with its 95% interval (see :mod:`course_lib.stats`).

    Args:
        a, b: evaluations of two models on the same users (checked: ``users`` must be equal).
        metric: e.g. "NDCG@10", "HR@10", "MRR", "AUC".
        method: "bootstrap" (over users, seeded) or "t" (paired t interval).
        seed: the bootstrap's seed.
    """
    if a.users.shape != b.users.shape or not torch.equal(a.users.cpu(), b.users.cpu()):
        raise ValueError(
            f"a paired comparison needs the same users in the same order: got {a.users.numel()} and "
            f"{b.users.numel()} users{'' if a.users.shape != b.users.shape else ' in a different order or set'}. "
            "Evaluate both models on the same batches (same split, same user order)."
        )
    return paired_difference(a.per_user(metric), b.per_user(metric), method=method, seed=seed)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, batches: Iterable[Batch], *, device: torch.device | str = "cpu", repeats: Repeats = "drop"
) -> Evaluation:
    """Full-ranking evaluation of any model with ``score_all(batch) -> (B, I)``.

    Args:
        model: a recommender (see :class:`course_lib.models.Recommender`); moved to
            ``device``, put in eval mode for the pass and restored afterwards.
        batches: batches with ``targets`` (and ``seen``), e.g. from
            :func:`course_lib.data.evaluation_batches`.
        device: where to compute.
        repeats: what to do with a user whose target is among their seen items (see the module
            docstring): ``"drop"`` the user (counted in ``repeats_dropped``) or ``"rank_seen"``
            (remove no seen item for anyone).

    Returns:
        An :class:`Evaluation`; ``.metrics()`` gives HR@K, NDCG@K, MRR and AUC.

    Raises:
        ValueError: no batches, a batch without targets, or NaN scores (a ranking is undefined);
            infinite scores are ranked like any other (``+inf`` above everything finite).
    """
    _check_repeats(repeats)
    ranks, aucs, users, targets, top_items = [], [], [], [], []
    num_items, dropped, seen_any = model.num_items, 0, False
    with eval_mode(model.to(device)):
        for batch in batches:
            if batch.targets is None:
                raise ValueError("evaluate needs batches with targets (see evaluation_batches).")
            seen_any = True
            batch, left_out = _apply_repeat_rule(batch, repeats)
            dropped += left_out
            if len(batch) == 0:
                continue
            batch = batch.to(device)
            excluded = None if repeats == "rank_seen" else batch.excluded
            scores = model.score_all(batch)  # (B, I)
            _check_scores(scores, num_items)
            scores = scores.float()
            ranks.append(target_ranks(scores, batch.targets, excluded).cpu())
            aucs.append(target_aucs(scores, batch.targets, excluded).cpu())
            users.append(batch.users.cpu())
            targets.append(batch.targets.cpu())
            ranked = scores if excluded is None else scores.masked_fill(
                exclusion_mask(excluded, batch.targets, num_items), -math.inf)  # (B, I)
            top_items.append((ranked.topk(min(TOP_LIST, num_items), dim=1).indices + 1).cpu())  # (B, TOP_LIST) ids
    if not seen_any:
        raise ValueError(
            "evaluate got no batches: is any user evaluable (3 or more events)? evaluation_batches(split, stage) "
            "gives none otherwise."
        )
    if not ranks:
        raise ValueError(
            f"every one of the {dropped} users has a target among their seen items (repeat consumption), and "
            "repeats='drop' leaves them all out. Evaluate with repeats='rank_seen' to rank seen items too."
        )
    _warn_dropped(dropped)
    return Evaluation(torch.cat(ranks), torch.cat(aucs), torch.cat(users), num_items,
                      targets=torch.cat(targets), top_items=torch.cat(top_items), repeats_dropped=dropped)


def _check_repeats(repeats: str) -> None:
    if repeats not in REPEAT_RULES:
        raise ValueError(f"repeats must be one of {REPEAT_RULES}, got {repeats!r}.")


def repeat_targets(batch: Batch) -> Tensor:
    """(B,) bool: True where the user's target is also one of their seen items (a repeat)."""
    return (batch.excluded == batch.targets[:, None]).any(dim=1)


def _apply_repeat_rule(batch: Batch, repeats: str) -> tuple[Batch, int]:
    """The batch without the users ``repeats="drop"`` leaves out, and how many were left out."""
    if repeats != "drop":
        return batch, 0
    keep = ~repeat_targets(batch)
    if bool(keep.all()):
        return batch, 0
    rows = {field.name: getattr(batch, field.name)[keep] for field in fields(batch)
            if isinstance(getattr(batch, field.name), Tensor) and getattr(batch, field.name).shape[:1] == keep.shape}
    return replace(batch, **rows), int((~keep).sum())


def _warn_dropped(dropped: int) -> None:
    if dropped:
        warnings.warn(
            f"{dropped} users' targets are items they had already seen (repeat consumption); they are left out "
            "of this evaluation (repeats='drop'). Pass repeats='rank_seen' to rank seen items for everyone.",
            stacklevel=3,
        )


def sample_negatives(
    excluded: Tensor, targets: Tensor, num_items: int, num_negatives: int, generator: torch.Generator
) -> Tensor:
    """Draw ``num_negatives`` distinct items per user, uniformly from items neither seen nor the target.

    Args:
        excluded: (B, S) seen items, ``PAD_ID``-padded (CPU).
        targets: (B,) target ids (CPU).
        num_items: I.
        num_negatives: N - 1 negatives per user.
        generator: a CPU ``torch.Generator``.

    Returns:
        Long (B, num_negatives) item ids.
    """
    allowed = ~exclusion_mask(excluded, targets, num_items)  # (B, I)
    allowed.scatter_(1, (targets - 1)[:, None], False)
    if (allowed.sum(1) < num_negatives).any():
        raise ValueError(f"some user has fewer than {num_negatives} unseen items to sample from.")
    keys = torch.rand(allowed.shape, generator=generator)  # uniform keys; top-k = a uniform sample
    keys[~allowed] = -1.0
    return keys.topk(num_negatives, dim=1).indices + 1  # (B, num_negatives) item ids


@torch.no_grad()
def evaluate_sampled(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    *,
    num_negatives: int = 100,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    repeats: Repeats = "drop",
) -> Evaluation:
    """Rank each target among ``num_negatives`` uniformly sampled unseen items (biased; for teaching).

    Uses ``model.score(batch, candidates)`` with the target in column 0. Ties are
    pessimistic, as in :func:`evaluate`.

    Args:
        model: a recommender (moved to ``device``).
        batches: evaluation batches with ``targets``.
        num_negatives: negatives per user (the common choice is 100).
        generator: a CPU ``torch.Generator``, so the sample is repeatable.
        device: where to compute.
        repeats: users whose target is a seen item are left out (``"drop"``) or seen items may be
            drawn as negatives (``"rank_seen"``), as in :func:`evaluate`.
    """
    _check_repeats(repeats)
    ranks, users, dropped = [], [], 0
    with eval_mode(model.to(device)):
        for batch in batches:
            batch, left_out = _apply_repeat_rule(batch, repeats)
            dropped += left_out
            if len(batch) == 0:
                continue
            excluded = batch.excluded if repeats == "drop" else torch.zeros_like(batch.excluded[:, :1])
            negatives = sample_negatives(excluded, batch.targets, model.num_items, num_negatives, generator)
            candidates = torch.cat([batch.targets[:, None], negatives], dim=1)  # (B, N)
            scores = model.score(batch.to(device), candidates.to(device)).float().cpu()  # (B, N)
            ranks.append((scores >= scores[:, :1]).sum(1))
            users.append(batch.users)
    if not ranks:
        raise ValueError("evaluate_sampled got no user to rank (no batches, or every target a seen item with repeats='drop').")
    _warn_dropped(dropped)
    return Evaluation(torch.cat(ranks), None, torch.cat(users), num_negatives + 1, repeats_dropped=dropped)

