"""Which history events made the model score the target? Importance measures, baselines and a truth test.

For one prediction (a user's history, the score ``s`` of one target item) each measure
gives one number per history event l:

* **attention** - the weight the model put on event l, read from the one place every model
  gives its attention, ``model.attention(batch, items)`` (DIN: the candidate's target
  attention; SASRec: the newest position's row of the last layer, heads averaged, or of any
  layer with :func:`layer_attention`; the capstone: the candidate's weights over its interests
  times each interest's weights over the events);
* **gradient x input** - ``sum_d e_ld * ds/de_ld`` on the history item embeddings e_l, the
  first-order Taylor estimate of how much ``s`` falls if e_l is replaced by the *zero
  vector*. That is not removing the event: a zero vector keeps its slot, its position
  embedding and its attention weight, while ``PAD_ID`` is masked out of attention;
* **erasure** - ``s(history) - s(history with event l replaced by PAD_ID)``, the exact
  change when the event is removed (other events keep their positions).

On ShopWorld the interest behind every event is recorded, so each measure can be checked
for *plausibility* (does it point at the events a human would call relevant?): a history
event is *truly relevant* when its interest is the target event's interest.
:func:`mass_on_truth` (share of the positive importance on relevant events) and
:func:`importance_auc` (does the importance rank relevant events above the others? 0.5 =
chance) measure the agreement per user.

A high share means little by itself, because simple rules that look at no model score
well too. Every check is made against four **baselines** (:func:`baseline_importances`):

* ``uniform`` - every real event the same weight (the share of relevant events);
* ``newest`` - all weight on the newest event;
* ``recency`` - weight ``decay ** age`` (age 0 = newest), ``decay`` chosen on validation
  users by :func:`fit_recency_decay`;
* ``similarity`` - the cosine between the target's and each event's item vector from a
  model without attention (e.g. matrix factorisation), negatives counted as zero.

:func:`interest_alignment` runs the whole check for any model on ShopWorld's users and
reports the model's margin over each baseline as a paired per-user difference with a 95%
interval (:meth:`InterestAlignment.versus`). Plausibility is not *faithfulness* (agreement
with the model's own computation, e.g. with erasure): see notebook 15.
:func:`importance_alignment` runs the same check for any importance (gradient x input, erasure,
one layer's attention) of one batch.

Faithfulness: :func:`rank_agreement` gives, per prediction, the rank correlation over the real
history events between an explanation and erasure or gradient x input (:func:`rank_correlation`,
Spearman or Kendall's tau-b; Jain & Wallace, 2019), against a permutation baseline (the
explanation shuffled within each history, :func:`permute_within_rows`), each with a paired
interval over users. :func:`prediction_agreement` checks "the same predictions" user by user
(top-k overlap, total-variation distance of the two models' softmax over the catalogue).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .constants import PAD_ID
from .data.batch import Batch
from .data.split import SequenceSplit, Stage, pad_sequences
from .metrics import exclusion_mask
from .models.base import Recommender
from .modes import eval_mode
from .stats import PairedDifference, paired_difference

__all__ = [
    "BASELINES",
    "DECAY_GRID",
    "InterestAlignment",
    "PredictionAgreement",
    "RankAgreement",
    "attention_importance",
    "baseline_importances",
    "erasure_importance",
    "fit_recency_decay",
    "gradient_x_input",
    "ground_truth_labels",
    "importance_alignment",
    "importance_auc",
    "interest_alignment",
    "layer_attention",
    "mass_on_truth",
    "newest_importance",
    "permute_within_rows",
    "prediction_agreement",
    "rank_agreement",
    "rank_correlation",
    "recency_importance",
    "similarity_importance",
    "uniform_mass_on_truth",
]

BASELINES = ("uniform", "newest", "recency", "similarity")  # the order of every table
DECAY_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)  # candidates for fit_recency_decay


def _check_targets(batch: Batch, targets: Tensor) -> None:
    if not isinstance(targets, Tensor) or targets.shape != (len(batch),):
        got = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be (B,) = ({len(batch)},) item ids, got {got}.")


def _target_scores(model: nn.Module, batch: Batch, targets: Tensor) -> Tensor:
    return model.score(batch, targets[:, None])[:, 0]  # (B,)


def attention_importance(model: Recommender, batch: Batch, targets: Tensor) -> Tensor:
    """The model's own attention explanation of each target: ``model.attention(batch, targets).history``.

    Args:
        model: a recommender whose :meth:`attention` gives a ``history`` map (DIN, SASRec, the capstone, ...).
        batch: histories (B, L).
        targets: (B,) the item whose score is explained.

    Returns:
        (B, L) weights; 0 on padding, each row sums to 1 (if it has a real event).
    """
    _check_targets(batch, targets)
    with eval_mode(model):
        maps = model.attention(batch, targets[:, None])
    if maps.history is None:
        raise ValueError(f"{type(model).__name__}.attention gives no per-event weights (AttentionMaps.history).")
    return maps.history[:, 0]  # (B, L)


def layer_attention(model: Recommender, batch: Batch, *, layer: int = -1) -> Tensor:
    """The newest position's attention row in one self-attention layer (heads averaged).

    In a stack of layers, position l of a later layer already mixes earlier events, so it is
    a weight on a *mixture*, not on event l alone.

    Args:
        model: a recommender whose :meth:`attention` gives ``layers`` (B, n_layers, H, L, L) (SASRec, the capstone).
        batch: right-aligned histories (B, L).
        layer: which layer (default: the last).

    Returns:
        (B, L) weights; 0 on padding.
    """
    with eval_mode(model):
        maps = model.attention(batch)
    if maps.layers is None:
        raise ValueError(f"{type(model).__name__}.attention gives no self-attention layers.")
    return maps.layers[:, layer].mean(dim=1)[:, -1]  # (B, L): query = the newest slot


def gradient_x_input(model: Recommender, batch: Batch, targets: Tensor, *, embedding: nn.Module | None = None) -> Tensor:
    """Gradient x input of the target's score on the history item vectors.

    ``out[b, l] = sum_d e_bld * d s_b / d e_bld`` where ``e_bl`` is the vector of history item
    ``history[b, l]`` and ``s_b = model.score(batch, targets[:, None])[b, 0]``. A forward hook
    on ``embedding`` catches the call whose input is ``batch.history`` (candidates embedded by
    the same table are left alone).

    Args:
        model: a recommender with ``score(batch, items (B, N)) -> (B, N)``.
        batch: histories (B, L).
        targets: (B,) the item whose score is explained.
        embedding: the module whose output is the history's item vectors (default
            ``model.history_lookup``).

    Returns:
        (B, L) importances (0 on padding, whose embedding is the zero vector).
    """
    _check_targets(batch, targets)
    embedding = model.history_lookup if embedding is None else embedding
    if embedding is None:
        raise ValueError(f"{type(model).__name__} names no module for its history vectors; pass embedding=...")
    caught: list[Tensor] = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        if inputs[0] is batch.history:
            leaf = output.detach().requires_grad_(True)  # (B, L, D): the inputs we differentiate by
            caught.append(leaf)
            return leaf
        return None

    handle = embedding.register_forward_hook(hook)
    try:
        with eval_mode(model), torch.enable_grad():
            scores = _target_scores(model, batch, targets)  # (B,)
            if len(caught) != 1:
                raise RuntimeError(
                    f"expected the model to embed batch.history once through {type(embedding).__name__}, "
                    f"caught {len(caught)} calls; pass the right module as embedding=."
                )
            (grad,) = torch.autograd.grad(scores.sum(), caught[0])  # rows are independent: sum = per-row grads
    finally:
        handle.remove()
    return (grad * caught[0]).sum(dim=-1).detach()  # (B, L)


def erasure_importance(model: Recommender, batch: Batch, targets: Tensor, *, chunk_size: int = 4096) -> Tensor:
    """Score drop when one history event is removed, for every event.

    ``out[b, l] = s_b(history) - s_b(history without event l)``. The history stays
    right-aligned: the events older than l move one slot newer and a ``PAD_ID`` enters on the
    left, which is the history the user would have had without that event. (Replacing event l
    by ``PAD_ID`` in place would leave the newest slot empty when l = L-1, and a model that
    reads the state after slot L-1, like SASRec, refuses such a history.) For a model without
    positions, like DIN, this equals replacing the event by ``PAD_ID``. All B x L erased
    histories are scored in chunks.

    Args:
        model: a recommender with ``score(batch, items (B, N)) -> (B, N)``.
        batch: right-aligned histories (B, L).
        targets: (B,) the item whose score is explained.
        chunk_size: erased histories scored at once (bounds memory).

    Returns:
        (B, L) importances; 0 on padding. Positive = the event raised the target's score.
    """
    _check_targets(batch, targets)
    history = batch.history
    size, length = history.shape
    slot = torch.arange(length, device=history.device)
    # erasing event l: slot j takes old slot j - 1 for j <= l (older events move one slot newer), else old slot j;
    # index 0 of the padded rows below is a PAD_ID column (time 0)
    source = torch.where(slot[None, :] <= slot[:, None], slot[None, :], slot[None, :] + 1)  # (L, L) into 0..L
    padded = torch.cat([torch.full_like(history[:, :1], PAD_ID), history], dim=1)  # (B, L + 1)
    padded_times = torch.cat([torch.zeros_like(batch.history_times[:, :1]), batch.history_times], dim=1)
    erased = padded[:, source].reshape(size * length, length)  # (B*L, L): row b*L + l lacks event l
    erased_times = padded_times[:, source].reshape(size * length, length)
    users = batch.users.repeat_interleave(length)  # (B*L,)
    repeated = targets.repeat_interleave(length)  # (B*L,)
    with eval_mode(model), torch.no_grad():
        full = _target_scores(model, batch, targets)  # (B,)
        parts = []
        for start in range(0, size * length, chunk_size):
            part = slice(start, start + chunk_size)
            one = Batch(users=users[part], history=erased[part], history_times=erased_times[part])
            parts.append(_target_scores(model, one, repeated[part]))
        dropped = torch.cat(parts).view(size, length)  # (B, L)
    return (full[:, None] - dropped).masked_fill(history == PAD_ID, 0.0)  # (B, L)


def ground_truth_labels(
    split: SequenceSplit, event_interest: np.ndarray, users: Sequence[int] | np.ndarray | Tensor, stage: Stage, max_len: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The true interest behind every history event and the target, for evaluation batches.

    Rows line up with ``evaluation_batches(split, stage, max_len=max_len, users=users)``
    (right-aligned histories).

    Args:
        split: the split of ShopWorld's interactions.
        event_interest: (E,) the interest of every row of the interactions table
            (``world.interactions["interest"]``; ``NOISE = -1`` for random events).
        users: (B,) user indices.
        stage: ``"valid"`` or ``"test"``.
        max_len: L.

    Returns:
        ``relevant`` (B, L) bool: a real event whose interest is the target's (never for a
        noise target); ``history_interest`` (B, L) long (-1 on padding and noise events);
        ``target_interest`` (B,) long.
    """
    event_interest = np.asarray(event_interest)
    cut = {"valid": 2, "test": 1}[stage]
    histories, targets = [], []
    for user in np.asarray(users, dtype=np.int64):
        rows = split.rows[int(user)]
        histories.append(event_interest[rows[: len(rows) - cut]])
        targets.append(int(event_interest[rows[len(rows) - cut]]))
    history_interest = torch.from_numpy(pad_sequences(histories, max_len, pad=-1))  # (B, L)
    target_interest = torch.tensor(targets, dtype=torch.long)  # (B,)
    relevant = (history_interest == target_interest[:, None]) & (target_interest[:, None] >= 0)
    return relevant, history_interest, target_interest


def _check_same_shape(importance: Tensor, relevant: Tensor, real: Tensor) -> None:
    if not (importance.shape == relevant.shape == real.shape) or importance.ndim != 2:
        raise ValueError(
            f"importance, relevant and real must all be (B, L), got {tuple(importance.shape)}, "
            f"{tuple(relevant.shape)}, {tuple(real.shape)}."
        )


def mass_on_truth(importance: Tensor, relevant: Tensor, real: Tensor) -> Tensor:
    """Share of the positive importance that lands on truly relevant events, per row.

    ``sum_l relu(a_l) [l relevant] / sum_l relu(a_l)`` over real events l. Negative
    importances (an event that *lowered* the score) count as zero.

    Args:
        importance: (B, L) any importance measure.
        relevant: (B, L) bool, True = the event shares the target's interest.
        real: (B, L) bool, True = a real event (not padding).

    Returns:
        (B,) float64 shares in [0, 1]; NaN where a row has no positive importance.
    """
    _check_same_shape(importance, relevant, real)
    positive = importance.detach().double().clamp_min(0.0) * real  # (B, L)
    total = positive.sum(dim=1)
    share = (positive * relevant).sum(dim=1) / total
    return torch.where(total > 0, share, torch.full_like(share, float("nan"))).cpu()


def uniform_mass_on_truth(relevant: Tensor, real: Tensor) -> Tensor:
    """The share :func:`mass_on_truth` gives a uniform importance: relevant events / real events.

    Returns:
        (B,) float64; NaN for a row without real events.
    """
    relevant, real = relevant.cpu(), real.cpu()
    count = real.sum(dim=1).double()
    share = (relevant & real).sum(dim=1).double() / count
    return torch.where(count > 0, share, torch.full_like(share, float("nan")))


def importance_auc(importance: Tensor, relevant: Tensor, real: Tensor) -> Tensor:
    """Per-row AUC of the importance as a score for "relevant" among the real events (ties = 1/2).

    The probability that a random relevant event gets a higher importance than a random
    other real event; 0.5 = no better than chance, 1 = every relevant event ranked first.

    Returns:
        (B,) float64; NaN where a row has no relevant or no other real event.
    """
    _check_same_shape(importance, relevant, real)
    a = importance.detach().double().cpu()
    positive = (relevant & real).cpu()  # (B, L)
    negative = (~relevant & real).cpu()
    pairs = positive[:, :, None] & negative[:, None, :]  # (B, L, L): (relevant l, other m)
    diff = a[:, :, None] - a[:, None, :]  # (B, L, L)
    wins = ((diff > 0).double() + 0.5 * (diff == 0).double()) * pairs
    count = pairs.sum(dim=(1, 2)).double()
    auc = wins.sum(dim=(1, 2)) / count
    return torch.where(count > 0, auc, torch.full_like(auc, float("nan")))


def _check_real(real: Tensor) -> None:
    if not isinstance(real, Tensor) or real.dtype != torch.bool or real.ndim != 2:
        got = f"{real.dtype} {tuple(real.shape)}" if isinstance(real, Tensor) else type(real).__name__
        raise ValueError(f"real must be a (B, L) bool tensor (True = a real event, not padding), got {got}.")


def _ages(real: Tensor) -> Tensor:
    """(B, L) long: how many real events come after each real event (0 = the newest)."""
    return real.flip(1).long().cumsum(1).flip(1) - 1


def newest_importance(real: Tensor) -> Tensor:
    """All weight on each row's newest real event (the right-most True of ``real``).

    Args:
        real: (B, L) bool, True = a real event.

    Returns:
        (B, L) float64, one 1 per row with a real event, 0 elsewhere.
    """
    _check_real(real)
    return ((_ages(real) == 0) & real).double()


def recency_importance(real: Tensor, decay: float) -> Tensor:
    """Exponential recency: ``decay ** age`` on real events (age 0 = newest), 0 on padding.

    Args:
        real: (B, L) bool, True = a real event.
        decay: in (0, 1]; 1 is uniform, close to 0 is newest-only.

    Returns:
        (B, L) float64 weights (not normalised; :func:`mass_on_truth` normalises).
    """
    _check_real(real)
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) <= 1.0:
        raise ValueError(f"decay must be a number in (0, 1] (1 = uniform), got {decay!r}.")
    ages = _ages(real).clamp_min(0).double()
    return torch.where(real, float(decay) ** ages, torch.zeros_like(ages))


def similarity_importance(item_vectors: Tensor, history: Tensor, targets: Tensor) -> Tensor:
    """Cosine between the target's vector and each history event's vector, 0 on padding.

    Args:
        item_vectors: (I + 1, D) one vector per item id from a model without attention (e.g.
            ``MatrixFactorization.item_embedding.weight``); row ``PAD_ID`` is never read.
        history: (B, L) item ids, ``PAD_ID`` = padding.
        targets: (B,) the item whose score is explained.

    Returns:
        (B, L) float64 cosines in [-1, 1].
    """
    if not isinstance(item_vectors, Tensor) or item_vectors.ndim != 2:
        got = tuple(item_vectors.shape) if isinstance(item_vectors, Tensor) else type(item_vectors).__name__
        raise ValueError(f"item_vectors must be an (I + 1, D) tensor of item vectors, got {got}.")
    if targets.shape != (history.shape[0],):
        raise ValueError(f"targets must be (B,) = ({history.shape[0]},) item ids, got {tuple(targets.shape)}.")
    top = int(max(history.max(), targets.max())) if history.numel() else 0
    if top >= item_vectors.shape[0]:
        raise ValueError(f"item id {top} has no row in item_vectors ({item_vectors.shape[0]} rows = ids 0..{item_vectors.shape[0] - 1}).")
    vectors = nn.functional.normalize(item_vectors.detach().double().cpu(), dim=-1)
    history, targets = history.cpu(), targets.cpu()
    cosine = (vectors[history] * vectors[targets][:, None, :]).sum(-1)  # (B, L)
    return cosine.masked_fill(history == PAD_ID, 0.0)


def baseline_importances(
    history: Tensor, targets: Tensor, *, decay: float | None = None, item_vectors: Tensor | None = None
) -> dict[str, Tensor]:
    """The baselines every attention explanation is checked against, in :data:`BASELINES` order.

    ``uniform`` and ``newest`` always; ``recency`` when ``decay`` is given (fit it on
    validation with :func:`fit_recency_decay`); ``similarity`` when ``item_vectors`` are given.

    Args:
        history: (B, L) item ids, ``PAD_ID`` = padding.
        targets: (B,) the explained items.
        decay: the recency baseline's decay, or None to leave it out.
        item_vectors: (I + 1, D) item vectors of a model without attention, or None.

    Returns:
        name -> (B, L) float64 importance.
    """
    real = (history != PAD_ID).cpu()
    out = {"uniform": real.double(), "newest": newest_importance(real)}
    if decay is not None:
        out["recency"] = recency_importance(real, decay)
    if item_vectors is not None:
        out["similarity"] = similarity_importance(item_vectors, history, targets)
    return out


def _interest_rows(
    split: SequenceSplit, event_interest: np.ndarray, batch: Batch, stage: Stage
) -> tuple[Tensor, Tensor, Tensor]:
    """relevant (B, L), real (B, L), keep (B,): users with a real-interest target and some history."""
    relevant, _, target_interest = ground_truth_labels(split, event_interest, batch.users, stage, batch.history.shape[1])
    real = (batch.history != PAD_ID).cpu()
    keep = (target_interest >= 0) & real.any(dim=1)
    return relevant, real, keep


def fit_recency_decay(
    split: SequenceSplit,
    event_interest: np.ndarray,
    batches: Sequence[Batch],
    *,
    stage: Stage = "valid",
    grid: Sequence[float] = DECAY_GRID,
) -> float:
    """The recency baseline's ``decay``: the grid value with the highest mean :func:`mass_on_truth` on ``stage``.

    Fit on validation users (``evaluation_batches(split, "valid", ...)``), then read on test:
    the baseline gets the same chance to be tuned that a model gets. Ties go to the
    smallest decay.

    Args:
        split: the split of the batches.
        event_interest: (E,) ground-truth interest of every event row.
        batches: evaluation batches of ``stage``.
        stage: ``"valid"`` (default) or ``"test"``.
        grid: candidate decays in (0, 1].

    Returns:
        The chosen decay (a float of ``grid``).
    """
    if len(grid) == 0:
        raise ValueError("grid must hold at least one decay in (0, 1].")
    rows = [_interest_rows(split, event_interest, batch, stage) for batch in batches]
    if not rows:
        raise ValueError("fit_recency_decay needs at least one batch.")
    best, best_score = None, -np.inf
    for decay in grid:
        shares = [mass_on_truth(recency_importance(real, decay), relevant, real)[keep] for relevant, real, keep in rows]
        score = float(torch.cat(shares).mean())
        if score > best_score + 1e-12:
            best, best_score = float(decay), score
    return best


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class InterestAlignment:
    """Attention mass on the target's true interest, per evaluated user, with the baselines' mass."""

    share: np.ndarray  # (U',) attention mass on history events of the target's interest
    uniform: np.ndarray  # (U',) the same for uniform attention (the fraction of such events)
    users: np.ndarray  # (U',) the user indices evaluated (targets of a real interest only)
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (U',) mass, BASELINES order

    @property
    def mean_share(self) -> float:
        return float(self.share.mean())

    @property
    def mean_uniform(self) -> float:
        return float(self.uniform.mean())

    def versus(self, baseline: str, *, seed: int = 0) -> PairedDifference:
        """The model's margin over one baseline: paired per-user ``share - baseline`` with its 95% bootstrap interval."""
        if baseline not in self.baselines:
            raise ValueError(f"no baseline {baseline!r} was computed; have {sorted(self.baselines)}.")
        return paired_difference(self.share, self.baselines[baseline], seed=seed)

    def strongest_baseline(self) -> str:
        """The baseline with the highest mean mass (the first in ``BASELINES`` order on a tie)."""
        return max(self.baselines, key=lambda name: (float(self.baselines[name].mean()), -list(self.baselines).index(name)))

    def table(self, *, seed: int = 0) -> pd.DataFrame:
        """One row per baseline: its mean mass, and the model's paired margin over it with the 95% interval."""
        rows = []
        for name, values in self.baselines.items():
            diff = self.versus(name, seed=seed)
            rows.append({"explanation": name, "mass on truth": float(values.mean()), "model - it": diff.mean,
                         "low": diff.low, "high": diff.high})
        rows.append({"explanation": "model attention", "mass on truth": self.mean_share, "model - it": 0.0,
                     "low": 0.0, "high": 0.0})
        return pd.DataFrame(rows).set_index("explanation")


def interest_alignment(
    model: Recommender,
    split: SequenceSplit,
    event_interest: np.ndarray,
    batches: Sequence[Batch],
    *,
    stage: Stage = "test",
    device: torch.device | str = "cpu",
    decay: float | None = None,
    item_vectors: Tensor | None = None,
) -> InterestAlignment:
    """Share of each target's attention explanation that lies on history events of the target's true interest.

        share(user)   = sum over history events l of the target's interest of  w_l(target)
        uniform(user) = (number of such events) / (number of history events)

    ``w`` is :func:`attention_importance` (the model's own ``attention(...).history``). The
    same share is computed for every baseline of :func:`baseline_importances` (``newest``
    always, ``recency`` with ``decay``, ``similarity`` with ``item_vectors``), so that
    :meth:`InterestAlignment.versus` gives the model's margin over each on the same users.
    Users whose target is a random (noise) event have no true interest and are left out, as
    are users without history. A similarity row without any positive cosine prefers no event
    and scores the uniform share.

    Args:
        model: a trained recommender with per-event attention (evaluated in eval mode, restored afterwards).
        split: the split of the batches.
        event_interest: (E,) ground-truth interest of every event row (``NOISE = -1`` = random event).
        batches: evaluation batches of ``stage`` (``evaluation_batches(split, stage, max_len=L)``).
        stage: ``"test"`` or ``"valid"``.
        device: where to compute.
        decay: the recency baseline's decay (from :func:`fit_recency_decay` on validation), or None.
        item_vectors: (I + 1, D) item vectors of a model without attention for the similarity baseline, or None.

    Returns:
        An :class:`InterestAlignment`.
    """
    shares, users = [], []
    baselines: dict[str, list[np.ndarray]] = {}
    model.to(device)
    for batch in batches:
        relevant, real, keep = _interest_rows(split, event_interest, batch, stage)
        weights = attention_importance(model, batch.to(device), batch.targets.to(device)).cpu()  # (B, L)
        shares.append(mass_on_truth(weights, relevant, real)[keep].numpy())
        uniform = uniform_mass_on_truth(relevant, real)
        for name, importance in baseline_importances(batch.history, batch.targets, decay=decay, item_vectors=item_vectors).items():
            mass = mass_on_truth(importance, relevant, real)
            mass = torch.where(mass.isnan(), uniform, mass)  # no positive similarity anywhere: no preference = uniform
            baselines.setdefault(name, []).append(mass[keep].numpy())
        users.append(batch.users[keep].numpy())
    joined = {name: np.concatenate(parts) for name, parts in baselines.items()}
    return InterestAlignment(np.concatenate(shares), joined["uniform"], np.concatenate(users), joined)


# --- Faithfulness: does the explanation agree with the model's own computation? (notebook 15) ---
#
# Plausibility (above) compares an importance with the data's truth. Faithfulness compares it with
# what the model computes: per prediction, the rank correlation over the real history events between
# the attention weights and erasure (or gradient x input) (Jain & Wallace, 2019), against a
# permutation baseline (the same correlation with the attention shuffled within each history).

RANK_METHODS = ("spearman", "kendall")


def _average_ranks(values: Tensor, real: Tensor) -> Tensor:
    """(B, L) float64 ranks 1..n among each row's real entries, ties given their average rank; 0 on padding."""
    below = ((values[:, None, :] < values[:, :, None]) & real[:, None, :]).sum(-1)  # (B, L): real entries smaller
    equal = ((values[:, None, :] == values[:, :, None]) & real[:, None, :]).sum(-1)  # (B, L): real entries equal (self too)
    return torch.where(real, below + (equal + 1) / 2.0, torch.zeros_like(values))


def rank_correlation(a: Tensor, b: Tensor, real: Tensor, *, method: str = "spearman") -> Tensor:
    """Per-row rank correlation of two importances over the real history events.

    ``spearman``: the Pearson correlation of the average ranks (ties share their mean rank),
    as ``scipy.stats.spearmanr``. ``kendall``: tau-b, ``(concordant - discordant) /
    sqrt((n0 - ties_a) (n0 - ties_b))`` over the ``n0`` pairs of real events, as
    ``scipy.stats.kendalltau``.

    Args:
        a, b: (B, L) two importances of the same predictions.
        real: (B, L) bool, True = a real event (only those are ranked).
        method: ``"spearman"`` or ``"kendall"``.

    Returns:
        (B,) float64 in [-1, 1]; NaN where a row has fewer than 2 real events or either importance is constant on them.
    """
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape == real.shape and a.ndim == 2):
        shapes = [tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__ for x in (a, b, real)]
        raise ValueError(f"a, b and real must all be (B, L) tensors of one shape, got {shapes[0]}, {shapes[1]}, {shapes[2]}.")
    _check_real(real)
    if method not in RANK_METHODS:
        raise ValueError(f"method must be one of {RANK_METHODS}, got {method!r}.")
    a, b, real = a.detach().double().cpu(), b.detach().double().cpu(), real.cpu()
    if method == "spearman":
        ra, rb = _average_ranks(a, real), _average_ranks(b, real)  # (B, L)
        count = real.sum(1).double()
        ca = (ra - ra.sum(1, keepdim=True) / count[:, None]) * real  # centred ranks, 0 on padding
        cb = (rb - rb.sum(1, keepdim=True) / count[:, None]) * real
        numerator = (ca * cb).sum(1)
        denominator = ((ca * ca).sum(1) * (cb * cb).sum(1)).sqrt()
    else:
        pairs = real[:, :, None] & real[:, None, :]  # (B, L, L)
        pairs = pairs & torch.ones_like(pairs[0]).triu(1)  # each unordered pair once
        sa = torch.sign(a[:, :, None] - a[:, None, :]) * pairs  # (B, L, L)
        sb = torch.sign(b[:, :, None] - b[:, None, :]) * pairs
        numerator = (sa * sb).sum((1, 2))
        denominator = ((sa != 0).sum((1, 2)).double() * (sb != 0).sum((1, 2)).double()).sqrt()  # untied pairs of each
    out = numerator / denominator
    return torch.where(denominator > 0, out, torch.full_like(out, float("nan")))


def permute_within_rows(importance: Tensor, real: Tensor, generator: torch.Generator) -> Tensor:
    """Each row's real entries in a random order (a seeded uniform permutation per row); padding stays 0.

    Args:
        importance: (B, L).
        real: (B, L) bool, True = a real event.
        generator: a CPU ``torch.Generator`` (seed it for a repeatable baseline).

    Returns:
        (B, L) the same values on each row's real positions, shuffled among them.
    """
    _check_real(real)
    if not isinstance(importance, Tensor) or importance.shape != real.shape:
        got = tuple(importance.shape) if isinstance(importance, Tensor) else type(importance).__name__
        raise ValueError(f"importance must be (B, L) = {tuple(real.shape)} like real, got {got}.")
    importance, real = importance.detach().cpu(), real.cpu()
    keys = torch.rand(real.shape, generator=generator).masked_fill(~real, 2.0)  # padding sorts last
    order = keys.argsort(dim=1)  # (B, L): real slots first, in random order
    sorted_real = real.long().sort(dim=1, descending=True, stable=True).indices  # real slots first, in place order
    out = torch.zeros_like(importance)
    out.scatter_(1, sorted_real, importance.gather(1, order))  # k-th real slot gets the k-th randomly drawn real value
    return out.masked_fill(~real, 0.0)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class RankAgreement:
    """Per-prediction rank correlation of an explanation with a reference, and with its shuffled self."""

    correlation: np.ndarray  # (U',) rank correlation of the explanation with the reference, per user
    permuted: np.ndarray  # (U',) the same with the explanation permuted within each history (mean over draws)
    users: np.ndarray  # (U',) row indices kept (both correlations defined)
    method: str  # "spearman" or "kendall"

    @property
    def mean(self) -> float:
        return float(self.correlation.mean())

    def interval(self, *, seed: int = 0) -> PairedDifference:
        """Mean per-user correlation with its 95% bootstrap interval over users (the paired difference with 0)."""
        return paired_difference(self.correlation, np.zeros_like(self.correlation), seed=seed)

    def versus_permutation(self, *, seed: int = 0) -> PairedDifference:
        """The margin over the permutation baseline: paired per-user ``correlation - permuted`` with its 95% interval."""
        return paired_difference(self.correlation, self.permuted, seed=seed)

    def row(self, *, seed: int = 0) -> dict[str, float]:
        """One table row: the mean correlation and interval, the baseline, and the margin with its interval."""
        mean, margin = self.interval(seed=seed), self.versus_permutation(seed=seed)
        return {"rank corr": mean.mean, "low": mean.low, "high": mean.high, "permuted": float(self.permuted.mean()),
                "margin": margin.mean, "margin low": margin.low, "margin high": margin.high, "users": len(self.users)}


def rank_agreement(
    explanation: Tensor, reference: Tensor, real: Tensor, *, method: str = "spearman", n_permutations: int = 20,
    seed: int = 0, keep: Tensor | None = None,
) -> RankAgreement:
    """Faithfulness of an explanation: its per-user rank correlation with a reference, and a permutation baseline.

    Args:
        explanation: (B, L) e.g. the attention weights.
        reference: (B, L) what the model computes, e.g. :func:`erasure_importance` or :func:`gradient_x_input`.
        real: (B, L) bool, True = a real event.
        method: ``"spearman"`` or ``"kendall"`` (:func:`rank_correlation`).
        n_permutations: shuffles of the explanation per user; the baseline is their mean correlation.
        seed: seeds the shuffles.
        keep: (B,) bool, the rows to use (default all); rows where a correlation is undefined are dropped too.

    Returns:
        A :class:`RankAgreement`.
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}.")
    correlation = rank_correlation(explanation, reference, real, method=method)  # (B,)
    generator = torch.Generator().manual_seed(seed)
    draws = [rank_correlation(permute_within_rows(explanation, real, generator), reference, real, method=method)
             for _ in range(n_permutations)]
    permuted = torch.stack(draws).mean(0)  # (B,): NaN if any draw is undefined (only constant rows)
    rows = correlation.isfinite() & permuted.isfinite()
    if keep is not None:
        rows = rows & keep.cpu()
    index = rows.nonzero().flatten()
    return RankAgreement(correlation[index].numpy(), permuted[index].numpy(), index.numpy(), method)


def importance_alignment(
    importance: Tensor,
    split: SequenceSplit,
    event_interest: np.ndarray,
    batch: Batch,
    *,
    stage: Stage = "test",
    decay: float | None = None,
    item_vectors: Tensor | None = None,
) -> InterestAlignment:
    """:func:`interest_alignment` for any importance of one batch's targets (gradient x input, erasure, one layer's attention).

    The same users (a real-interest target and some history) and the same baselines as
    :func:`interest_alignment`; users on whose events ``importance`` has no positive value
    (its mass on truth is undefined) are left out, from the baselines too, so the margins stay paired.

    Args:
        importance: (B, L) one value per history event of ``batch`` (for ``batch.targets``).
        split, event_interest, stage, decay, item_vectors: as in :func:`interest_alignment`.
        batch: the evaluation batch of ``stage`` the importance explains.

    Returns:
        An :class:`InterestAlignment` whose ``share`` is the importance's mass on truth.
    """
    relevant, real, keep = _interest_rows(split, event_interest, batch, stage)
    if importance.shape != real.shape:
        raise ValueError(f"importance must be (B, L) = {tuple(real.shape)} like batch.history, got {tuple(importance.shape)}.")
    share = mass_on_truth(importance.cpu(), relevant, real)
    keep = keep & share.isfinite()
    uniform = uniform_mass_on_truth(relevant, real)
    baselines = {}
    for name, values in baseline_importances(batch.history.cpu(), batch.targets.cpu(), decay=decay, item_vectors=item_vectors).items():
        mass = mass_on_truth(values, relevant, real)
        baselines[name] = torch.where(mass.isnan(), uniform, mass)[keep].numpy()
    return InterestAlignment(share[keep].numpy(), baselines["uniform"], batch.users.cpu()[keep].numpy(), baselines)


# --- Same predictions? Two models compared user by user ---


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class PredictionAgreement:
    """How alike two models' recommendations are, per user."""

    overlap: np.ndarray  # (U,) |top-k of a  ∩  top-k of b| / k
    total_variation: np.ndarray  # (U,) 0.5 * sum_i |p_a(i) - p_b(i)| of the softmax over the ranked catalogue
    users: np.ndarray  # (U,) user indices
    k: int  # the list length compared

    def summary(self, *, quantile: float = 0.05) -> dict[str, float]:
        """Means, the worst user and a tail quantile (low for the overlap, high for the distance)."""
        return {f"top-{self.k} overlap mean": float(self.overlap.mean()),
                f"overlap q{quantile:g}": float(np.quantile(self.overlap, quantile)),
                "overlap min": float(self.overlap.min()),
                "identical lists": float((self.overlap == 1.0).mean()),
                "TV mean": float(self.total_variation.mean()),
                f"TV q{1 - quantile:g}": float(np.quantile(self.total_variation, 1 - quantile)),
                "TV max": float(self.total_variation.max())}


@torch.no_grad()
def prediction_agreement(
    model_a: Recommender, model_b: Recommender, batches: Sequence[Batch], *, k: int = 10, device: torch.device | str = "cpu"
) -> PredictionAgreement:
    """Per-user agreement of two models' rankings: top-k overlap and the total-variation distance of their softmaxes.

    Both models rank the catalogue as the evaluation does (the user's seen items removed, the
    target kept). ``p = softmax(scores)`` over those ranked items is each model's distribution
    over the next item; ``TV = 0.5 * sum_i |p_a(i) - p_b(i)|`` is 0 for the same distribution and
    1 for disjoint ones (the largest difference in probability any set of items can get).

    Args:
        model_a, model_b: recommenders over the same catalogue (``score_all(batch) -> (B, I)``).
        batches: evaluation batches (``targets`` and ``seen`` as from ``evaluation_batches``).
        k: the list length compared.
        device: where to compute.

    Returns:
        A :class:`PredictionAgreement` over every user of ``batches``.
    """
    if model_a.num_items != model_b.num_items:
        raise ValueError(f"the models rank different catalogues: {model_a.num_items} and {model_b.num_items} items.")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= model_a.num_items:
        raise ValueError(f"k must be an int in 1..{model_a.num_items}, got {k!r}.")
    overlaps, distances, users = [], [], []
    with eval_mode(model_a.to(device)), eval_mode(model_b.to(device)):
        for batch in batches:
            batch = batch.to(device)
            removed = exclusion_mask(batch.excluded, batch.targets, model_a.num_items) if batch.targets is not None else None
            scores = []
            for model in (model_a, model_b):
                s = model.score_all(batch).double()  # (B, I)
                scores.append(s if removed is None else s.masked_fill(removed, -math.inf))
            top_a, top_b = (s.topk(k, dim=1).indices for s in scores)  # (B, k) each
            shared = (top_a[:, :, None] == top_b[:, None, :]).any(-1).sum(1)  # (B,)
            p_a, p_b = (s.softmax(dim=1) for s in scores)  # (B, I); removed items get 0
            overlaps.append((shared.double() / k).cpu())
            distances.append((0.5 * (p_a - p_b).abs().sum(1)).cpu())
            users.append(batch.users.cpu())
    if not users:
        raise ValueError("prediction_agreement got no batches.")
    return PredictionAgreement(torch.cat(overlaps).numpy(), torch.cat(distances).numpy(), torch.cat(users).numpy(), k)
