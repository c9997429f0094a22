"""Multi-interest extraction: K learned queries attend over one history (ComiRec-SA style).

One user vector must sit *between* a user's interests (a fan of cooking books and of running
shoes gets a vector near neither). Self-attentive multi-interest pooling (Lin et al. 2017's
structured self-attention, used by ComiRec-SA, Cen et al. KDD 2020) reads the same history with
K different learned queries and returns K vectors, one per interest:

    a_{k,l} = w_k . tanh(W_1 e_l + b_1)                 score of history item l for query k
    A_{k,:} = softmax_l(a_{k,:})                        over the real (non-padding) items only
    v_k     = sum_l A_{k,l} e_l                         interest k: a weighted mean of items
    s(c)    = max_k v_k . e_c                           the candidate picks its best interest

The queries ``w_k`` are shared by all users; what differs between users is which of their
items each query picks. Scoring takes the *maximum* over the K interests (a candidate is
recommended if it matches any one interest well), as ComiRec does when it merges the K
retrieval lists; training uses the same max-over-K scores of every item in a full-catalogue
cross-entropy, so training and ranking agree. (ComiRec trains only the interest closest to the
target with a sampled softmax; the max is the same choice, made for every item.)

Training predicts the next item at every position of a window from the prefix up to that
position (a causal mask over the keys), as SASRec does. There is no order information in the
pooling: a multi-interest user is a *set* of interests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import masked_softmax
from ..constants import PAD_ID
from ..data.batch import Batch
from ..layers import prefix_attention_pool
from .base import AttentionMaps, Recommender, check_candidates, check_ids, check_targets, item_embedding


@dataclass(frozen=True)
class MultiInterestConfig:
    num_items: int  # I; items are 1..I, PAD_ID = 0
    num_interests: int = 4  # K, learned queries = interest vectors per user
    d_model: int = 64  # D, size of item embeddings and of every interest vector
    d_attention: int = 64  # hidden size of the scoring layer W_1 (ComiRec's d_a)
    dropout: float = 0.1  # dropout on the history's item embeddings during training
    init_std: float = 0.05  # standard deviation of the item embedding initialisation

    def __post_init__(self) -> None:
        for name in ("num_interests", "d_model", "d_attention"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")


class MultiInterest(Recommender):
    """K learned queries over the history give K interest vectors; a candidate scores by its best one.

    Args:
        config: a :class:`MultiInterestConfig`.
    """

    def __init__(self, config: MultiInterestConfig) -> None:
        super().__init__(config.num_items)
        self.config = config
        self.item_embedding = item_embedding(config.num_items + 1, config.d_model, config.init_std)  # (I+1, D)
        self.key_proj = nn.Linear(config.d_model, config.d_attention)  # W_1, b_1
        self.queries = nn.Linear(config.d_attention, config.num_interests, bias=False)  # row k = w_k
        self.dropout = nn.Dropout(config.dropout)

    def _embed(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """Item vectors (B, L, D) and the scores (B, K, L) of every query on every item."""
        check_ids(history, num_ids=self.num_items)
        items = self.dropout(self.item_embedding(history))  # (B, L, D)
        scores = self.queries(torch.tanh(self.key_proj(items)))  # (B, L, K)
        return items, scores.transpose(1, 2)  # (B, L, D), (B, K, L)

    def pool(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """The K interest vectors of each whole history, and their weights.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded (either side; the order is not used).

        Returns:
            interests (B, K, D) and weights (B, K, L): row k sums to 1 over the real items of
            the history and is 0 on padding (all zero for an empty history).
        """
        items, scores = self._embed(history)  # (B, L, D), (B, K, L)
        attn_mask = (history != PAD_ID)[:, None, :]  # (B, 1, L), True = a real item, may be attended
        weights = masked_softmax(scores, attn_mask)  # (B, K, L)
        return weights @ items, weights  # (B, K, D), (B, K, L)

    def forward(self, history: Tensor) -> Tensor:
        """(B, K, D) the K interest vectors of each history (see :meth:`pool`)."""
        return self.pool(history)[0]

    def prefix_interests(self, history: Tensor) -> Tensor:
        """The K interests of every prefix: entry [b, l] pools items up to and including l.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded.

        Returns:
            (B, L, K, D); the prefix ending at position l never sees positions after l.
        """
        items, scores = self._embed(history)  # (B, L, D), (B, K, L)
        interests, _ = prefix_attention_pool(scores, items, history != PAD_ID)  # (B, Lq, K, D)
        return interests

    def attention(self, batch: Batch, items: Tensor | None = None) -> AttentionMaps:
        """Each interest's weights over the history; with candidates ``items`` (B, N), the weights of
        the interest each candidate picks (its highest-scoring one) as the candidate's ``history`` map."""
        with torch.no_grad():
            interests, weights = self.pool(batch.history)  # (B, K, D), (B, K, L)
            if items is None:
                return AttentionMaps(interests=weights)
            check_candidates(items, self.num_items, len(batch))
            best = (self.item_embedding(items) @ interests.transpose(1, 2)).argmax(dim=-1)  # (B, N): k per candidate
        picked = weights.gather(1, best[..., None].expand(-1, -1, weights.shape[-1]))  # (B, N, L)
        return AttentionMaps(history=picked, interests=weights)

    def interest_scores(self, interests: Tensor) -> Tensor:
        """Scores of every item from interests: (..., K, D) -> (..., I), the max over K."""
        return (interests @ self.item_embedding.weight[1:].T).amax(dim=-2)  # (..., K, I) -> (..., I)

    def score_all(self, batch: Batch) -> Tensor:
        return self.interest_scores(self(batch.history))  # (B, I)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Full-catalogue cross-entropy of the next item on the max-over-K scores.

        Uses ``batch.seq_targets`` (every position predicts from its prefix) or
        ``batch.targets`` (the whole history predicts one item).
        """
        if batch.seq_targets is not None:
            keep = batch.seq_targets != PAD_ID  # (B, L)
            interests, targets = self.prefix_interests(batch.history)[keep], batch.seq_targets[keep]  # (P, K, D), (P,)
        elif batch.targets is not None:
            interests, targets = self(batch.history), batch.targets  # (B, K, D), (B,)
        else:
            raise ValueError("MultiInterest.loss needs batch.seq_targets (training windows) or batch.targets.")
        check_targets(targets, self.num_items, "MultiInterest")
        return F.cross_entropy(self.interest_scores(interests), targets - 1)  # item id t is column t - 1


def assign_events(weights: Tensor, history: Tensor) -> Tensor:
    """Which interest attends most to each history event: argmax over K of the weights.

    Args:
        weights: (B, K, L) attention weights of :class:`MultiInterest` (``model.attention(batch).interests``).
        history: (B, L) item ids, ``PAD_ID``-padded.

    Returns:
        (B, L) long interest index 0..K-1 per event, -1 at padding.
    """
    if weights.ndim != 3 or weights.shape[0] != history.shape[0] or weights.shape[2] != history.shape[1]:
        raise ValueError(f"weights must be (B, K, L) for history (B, L) = {tuple(history.shape)}, got {tuple(weights.shape)}.")
    chosen = weights.argmax(dim=1)  # (B, L)
    return torch.where(history != PAD_ID, chosen, torch.full_like(chosen, -1))
