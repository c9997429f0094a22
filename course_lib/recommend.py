"""``recommend``: the top-k items for a user, with the attention that led to each of them.

The user's input is their *whole* known history (every event of the split, validation and
test included): this is what a deployed model would read after training. Items the user has
already interacted with are never recommended. Any recommender whose ``attention(batch,
items)`` gives a per-event explanation (``history``) can be served this way: the capstone,
SASRec, DIN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .constants import PAD_ID
from .data.batch import Batch
from .data.split import SequenceSplit, pad_sequences
from .models.base import Recommender
from .modes import eval_mode


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class ItemCatalogue:
    """What a person sees of each item; row ``item_id`` describes that item (row ``PAD_ID`` blank)."""

    titles: tuple[str, ...]  # (I + 1,) a short title per item id
    images: np.ndarray | None = None  # (I + 1, S, S, 3) uint8 pictures, or None when items have none
    item_ids: np.ndarray | None = None  # (I + 1,) original id of each item id (entry PAD_ID = -1), as in SequenceSplit

    @property
    def num_items(self) -> int:
        """I, the items described (rows 1..I)."""
        return len(self.titles) - 1


def shopworld_catalogue(world) -> ItemCatalogue:
    """Titles like ``'circle red · acme wool …'`` and the images of ShopWorld's items.

    It matches a split made with ``temporal_leave_one_out(world.interactions, catalogue=world.items.index)``.
    """
    titles = ["<pad>"] + [f"{row.shape} {row.colour} · {row.text}" for row in world.items.itertuples()]
    return ItemCatalogue(tuple(titles), world.images, item_ids=np.concatenate([[-1], world.items.index.to_numpy()]))


def movielens_catalogue(items: pd.DataFrame, split: SequenceSplit) -> ItemCatalogue:
    """``'Title (year)'`` of every MovieLens item, in course item ids (no images)."""
    table = items.loc[list(split.item_ids[1:])]
    titles = [t if pd.isna(y) else f"{t} ({int(y)})" for t, y in zip(table["title"], table["year"])]
    return ItemCatalogue(tuple(["<pad>"] + titles), item_ids=np.asarray(split.item_ids))


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Recommendations:
    """The top-k of one user and what the model attended to for each of them."""

    user: int  # user index 0..U-1
    items: list[int]  # k recommended item ids, best first
    titles: list[str]  # their titles
    scores: list[float]  # their scores
    history: list[int]  # the N most recent history item ids the model read, oldest first
    history_titles: list[str]  # their titles
    attention: np.ndarray  # (k, N) weight of each history event behind each recommendation; rows sum to 1
    interest_weights: np.ndarray | None  # (k, K + 1) how much each recommendation read each interest (0 = "now"); capstone only
    images: np.ndarray | None = None  # (k, S, S, 3) the recommended items' pictures, if the catalogue has them
    history_images: np.ndarray | None = None  # (N, S, S, 3) the history's pictures, if any

    def table(self) -> pd.DataFrame:
        """The top-k as a table: rank, item, title, score, and the history event attended most."""
        strongest = self.attention.argmax(axis=1)
        return pd.DataFrame({
            "item": self.items,
            "title": self.titles,
            "score": np.round(self.scores, 3),
            "most attended history item": [self.history_titles[j] for j in strongest],
            "its weight": np.round(self.attention[np.arange(len(self.items)), strongest], 3),
        }, index=pd.RangeIndex(1, len(self.items) + 1, name="rank"))


def user_batch(split: SequenceSplit, user: int, max_len: int) -> Batch:
    """A one-user :class:`Batch` of the user's whole known history (newest ``max_len`` events, right-aligned)."""
    sequence, times = split.sequences[user], split.times[user]
    return Batch(
        users=torch.tensor([user]),
        history=torch.from_numpy(pad_sequences([sequence], max_len)),
        history_times=torch.from_numpy(pad_sequences([times], max_len, pad=0)),
        seen=torch.from_numpy(np.asarray(sequence, dtype=np.int64))[None],
    )


def check_agreement(model: Recommender, split: SequenceSplit, catalogue: ItemCatalogue) -> None:
    """Refuse a model, split and catalogue that describe different items (a ValueError saying which)."""
    if split.num_items != model.num_items:
        raise ValueError(
            f"the model ranks {model.num_items} items but the split has {split.num_items}: "
            "use the split the model was trained on."
        )
    if catalogue.num_items != split.num_items:
        raise ValueError(
            f"the catalogue describes {catalogue.num_items} items but the split has {split.num_items}: "
            "build the catalogue for this split (shopworld_catalogue / movielens_catalogue)."
        )
    if catalogue.item_ids is not None and not np.array_equal(catalogue.item_ids, split.item_ids):
        raise ValueError(
            "the catalogue and the split number their items differently (their original item ids differ): "
            "build the catalogue for this split."
        )


def check_user(split: SequenceSplit, user_id: object) -> int:
    """``user_id`` as an int if it is a user index 0..U-1 of ``split``; otherwise a ValueError naming the range."""
    valid = isinstance(user_id, (int, np.integer)) and not isinstance(user_id, bool) and 0 <= int(user_id) < split.num_users
    if not valid:
        raise ValueError(
            f"unknown user id {user_id!r}: valid user ids are the user indices 0..{split.num_users - 1} of the split "
            f"(original id u is split.user_ids.tolist().index(u))."
        )
    return int(user_id)


@torch.no_grad()
def recommend(model: Recommender, split: SequenceSplit, catalogue: ItemCatalogue, user_id: int, k: int = 10) -> Recommendations:
    """The top-``k`` unseen items for one user, with the attention behind each.

    Args:
        model: a trained recommender with attention over the history (the capstone, SASRec,
            DIN); put in eval mode for the call, then restored.
        split: the split the user comes from (their history).
        catalogue: titles (and images) of the items.
        user_id: a user index 0..U-1 of ``split``.
        k: how many items, 1..I.

    Returns:
        :class:`Recommendations`.

    Raises:
        ValueError: ``user_id`` is not a user of ``split``, ``k`` is out of range, the model, split
            and catalogue describe different items, or the model gives a NaN or infinite score (its
            weights or item features are damaged).

    A user who has already seen every item but j < k gets j recommendations.
    """
    check_agreement(model, split, catalogue)
    user = check_user(split, user_id)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= model.num_items:
        raise ValueError(f"k must be an int in 1..{model.num_items}, got {k!r}.")
    device = next(model.parameters()).device
    batch = user_batch(split, user, model.config.max_len).to(device)
    with eval_mode(model):
        scores = model.score_all(batch)[0]  # (I,)
        bad = (~torch.isfinite(scores)).nonzero().flatten() + 1  # item ids with a NaN or infinite score
        if len(bad):
            raise ValueError(
                f"the model gives {len(bad)} of {model.num_items} items a NaN or infinite score (item ids "
                f"{bad[:5].tolist()}{' ...' if len(bad) > 5 else ''}): its weights or item features are damaged; "
                "reload or retrain it."
            )
        scores[batch.seen[0] - 1] = float("-inf")  # never recommend what the user already has
        top = scores.topk(min(k, int(torch.isfinite(scores).sum()))).indices + 1  # (k,) item ids
        maps = model.attention(batch, top[None])  # history (1, k, L), candidate_interests (1, k, K + 1) if any
    if maps.history is None:
        raise TypeError(f"{type(model).__name__} gives no per-event attention to explain its recommendations with.")
    real = (batch.history[0] != PAD_ID).cpu().numpy()  # (L,)
    history = batch.history[0].cpu().numpy()[real].tolist()
    items = top.cpu().tolist()
    images = catalogue.images
    interests = maps.candidate_interests
    return Recommendations(
        user=user, items=items, titles=[catalogue.titles[i] for i in items],
        scores=scores[top - 1].cpu().tolist(), history=history, history_titles=[catalogue.titles[i] for i in history],
        attention=maps.history[0].cpu().numpy()[:, real],
        interest_weights=None if interests is None else interests[0].cpu().numpy(),
        images=None if images is None else images[items], history_images=None if images is None else images[history],
    )
