"""Which history events made the model score the target? Three importance measures and a truth test.

For one prediction (a user's history, the score ``s`` of one target item) each measure
gives one number per history event l:

* **attention** - the weight the model put on event l (DIN: the candidate's target
  attention; SASRec: the last position's row of one layer, heads averaged);
* **gradient x input** - ``sum_d e_ld * ds/de_ld`` on the history item embeddings e_l, the
  first-order Taylor estimate of how much ``s`` falls if e_l is set to zero (``PAD_ID``'s
  embedding);
* **erasure** - ``s(history) - s(history with event l replaced by PAD_ID)``, the exact
  change when the event is removed (other events keep their positions).

On ShopWorld the interest behind every event is recorded, so each measure can be checked:
a history event is *truly relevant* when its interest is the target event's interest.
:func:`mass_on_truth` (share of the positive importance on relevant events, against the
share of relevant events a uniform importance gives, :func:`uniform_mass_on_truth`) and
:func:`importance_auc` (does the importance rank relevant events above the others? 0.5 =
chance) measure the agreement per user.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from .constants import PAD_ID
from .data.batch import Batch
from .data.split import SequenceSplit, Stage, pad_sequences

__all__ = [
    "din_attention",
    "erasure_importance",
    "gradient_x_input",
    "ground_truth_labels",
    "importance_auc",
    "mass_on_truth",
    "sasrec_attention",
    "uniform_mass_on_truth",
]


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check_targets(batch: Batch, targets: Tensor) -> None:
    if targets.shape != (len(batch),):
        raise ValueError(f"targets must be (B,) = ({len(batch)},) item ids, got shape {tuple(targets.shape)}.")


def _target_scores(model: nn.Module, batch: Batch, targets: Tensor) -> Tensor:
    return model.score(batch, targets[:, None])[:, 0]  # (B,)


def din_attention(model: nn.Module, batch: Batch, targets: Tensor) -> Tensor:
    """Target attention of a DIN: the weight each history event gets when ``targets`` is the candidate.

    Args:
        model: a :class:`~course_lib.models.DIN` (attention pooling).
        batch: histories (B, L).
        targets: (B,) the item whose score is explained.

    Returns:
        (B, L) weights, heads averaged; 0 on padding, each row sums to 1 (if it has a real event).
    """
    _check_targets(batch, targets)
    with _eval_mode(model), torch.no_grad():
        _, weights = model.score(batch, targets[:, None], return_attention=True)  # (B, H, 1, L)
    return weights.mean(dim=1)[:, 0]  # (B, L)


def sasrec_attention(model: nn.Module, batch: Batch, *, layer: int = -1) -> Tensor:
    """The newest position's attention row in one layer of a SASRec (heads averaged).

    This is what is usually drawn as "the model looked here". In a stack of layers, position
    l of a later layer already mixes earlier events, so it is a weight on a *mixture*, not on
    event l alone.

    Args:
        model: a :class:`~course_lib.models.SASRec` (anything whose ``forward(history,
            return_attention=True)`` returns weights (B, n_layers, H, L, L)).
        batch: right-aligned histories (B, L).
        layer: which layer (default: the last).

    Returns:
        (B, L) weights; 0 on padding.
    """
    with _eval_mode(model), torch.no_grad():
        _, weights = model(batch.history, return_attention=True)  # (B, n_layers, H, L, L)
    return weights[:, layer].mean(dim=1)[:, -1]  # (B, L): query = the newest slot


def gradient_x_input(model: nn.Module, batch: Batch, targets: Tensor, *, embedding: nn.Module | None = None) -> Tensor:
    """Gradient x input of the target's score on the history item embeddings.

    ``out[b, l] = sum_d e_bld * d s_b / d e_bld`` where ``e_bl = embedding(history[b, l])``
    and ``s_b = model.score(batch, targets[:, None])[b, 0]``. A forward hook on ``embedding``
    catches the call whose input is ``batch.history`` (candidates embedded by the same table
    are left alone).

    Args:
        model: a recommender with ``score(batch, items (B, N)) -> (B, N)``.
        batch: histories (B, L).
        targets: (B,) the item whose score is explained.
        embedding: the module that embeds history items (default ``model.item_embedding``).

    Returns:
        (B, L) importances (0 on padding, whose embedding is the zero vector).
    """
    _check_targets(batch, targets)
    embedding = model.item_embedding if embedding is None else embedding
    caught: list[Tensor] = []

    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        if inputs[0] is batch.history:
            leaf = output.detach().requires_grad_(True)  # (B, L, D): the inputs we differentiate by
            caught.append(leaf)
            return leaf
        return None

    handle = embedding.register_forward_hook(hook)
    try:
        with _eval_mode(model), torch.enable_grad():
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


def erasure_importance(model: nn.Module, batch: Batch, targets: Tensor, *, chunk_size: int = 4096) -> Tensor:
    """Score drop when one history event is replaced by ``PAD_ID``, for every event.

    ``out[b, l] = s_b(history) - s_b(history with position l set to PAD_ID)``; the other
    events keep their positions. All B x L erased histories are scored in chunks.

    Args:
        model: a recommender with ``score(batch, items (B, N)) -> (B, N)``.
        batch: histories (B, L).
        targets: (B,) the item whose score is explained.
        chunk_size: erased histories scored at once (bounds memory).

    Returns:
        (B, L) importances; 0 on padding. Positive = the event raised the target's score.
    """
    _check_targets(batch, targets)
    history = batch.history
    size, length = history.shape
    eye = torch.eye(length, dtype=torch.bool, device=history.device)  # (L, L): row l erases position l
    erased = history[:, None, :].masked_fill(eye, PAD_ID).reshape(size * length, length)  # (B*L, L)
    erased_times = batch.history_times[:, None, :].masked_fill(eye, 0).reshape(size * length, length)
    users = batch.users.repeat_interleave(length)  # (B*L,)
    repeated = targets.repeat_interleave(length)  # (B*L,)
    with _eval_mode(model), torch.no_grad():
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
