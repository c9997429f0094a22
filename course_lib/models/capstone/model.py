"""The capstone: multimodal items -> time-aware causal self-attention -> K interests -> the candidate picks.

    f(i)      = ItemEncoder(i)                                  (D,)  fused item vector (ID, image/text/price or text/metadata)
    x_l       = f(item_l) + P[L-1-l] + T[gap bucket_l]          SASRec's input plus the time-gap embedding (notebook 10)
    h         = CausalTransformer(x)                            (B, L, D)   position l sees positions <= l only
    A_{k,l,j} = softmax_{j <= l}(q_k . h_j / sqrt(D))           K learned queries over the prefix (multi-interest)
    v_{l,0}   = h_l,   v_{l,k} = sum_j A_{k,l,j} h_j            K + 1 interests after position l (0 = "now")
    s_l(c)    = tau log sum_k exp(v_{l,k} . f(c) / tau)         the candidate c picks its interests (a smooth max)
    a_k(c)    = softmax_k(v_{l,k} . f(c) / tau) = ds/d(v_k.f)   target attention: how much c reads interest k

Full-catalogue scoring stays cheap: ``V F^T`` is one (K + 1, D) x (D, I) product per user,
then a log-sum-exp over the K + 1 interests of every column. Training is SASRec's: the
full-catalogue cross-entropy of the next item at every position (every step is causal, so
position l never sees anything after l, tested).

Why the candidate reads *interests* rather than all L history states: DIN-style target
attention over L states would build a (B, I, L) tensor per position in training; reading K + 1
interests keeps it a (K + 1)-row matrix product. The explanation of candidate c is its
attention over the history events, ``sum_k a_k(c) A_{k,l,:}``, where the "now" interest's row is
the last layer's self-attention of position l (averaged over heads); it sums to 1 over the real
events (:meth:`CapstoneRecommender.explain`). It is attention, not an exact attribution: the
states h_j mix earlier events too (notebook 15 asks how far attention explains a model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...attention import causal_mask, masked_softmax
from ...constants import PAD_ID
from ...data.batch import Batch
from ..encoded_items import EncodedItems
from ..time_aware_sasrec import TimeAwareSASRec
from .config import CapstoneConfig


@dataclass(frozen=True)
class UserState:
    """Everything the capstone computes about a history (see :meth:`CapstoneRecommender.user_state`)."""

    interests: Tensor  # (B, L, K + 1, D) interests after every position; index 0 = the current state h_l
    event_weights: Tensor  # (B, L, K + 1, L) each interest's weights over the history events (rows sum to 1 on real items)
    self_attention: Tensor  # (B, n_layers, H, L, L) the causal self-attention weights


class CapstoneRecommender(EncodedItems, TimeAwareSASRec):
    """Time-aware SASRec over item vectors from an item encoder, with K interests read by the candidate.

    Args:
        config: a :class:`CapstoneConfig` (its ``d_model`` and ``num_items`` must match the encoder's).
        item_encoder: a module with ``forward(items (...)) -> (..., D)`` and ``all_items() -> (I + 1, D)``
            (``PAD_ID`` -> zeros), e.g. :class:`~course_lib.models.multimodal.ItemEncoder` (ShopWorld)
            or :class:`~course_lib.models.capstone.MetadataItemEncoder` (MovieLens).
    """

    def __init__(self, config: CapstoneConfig, item_encoder: nn.Module) -> None:
        encoder_config = getattr(item_encoder, "config", None)
        if getattr(encoder_config, "d_model", None) != config.d_model or getattr(encoder_config, "num_items", None) != config.num_items:
            raise ValueError(
                f"the item encoder must produce D = {config.d_model} vectors for I = {config.num_items} items; "
                f"its config says D = {getattr(encoder_config, 'd_model', '?')}, I = {getattr(encoder_config, 'num_items', '?')}."
            )
        super().__init__(config)
        del self.item_embedding  # item vectors come from the item encoder (which has its own ID table)
        self.config: CapstoneConfig = config
        self.item_encoder = item_encoder
        self.interest_queries = nn.Parameter(torch.randn(config.num_interests, config.d_model) * config.init_std)  # q_k

    # ------------------------------------------------------------------ the user side
    def user_state(self, history: Tensor, history_times: Tensor) -> UserState:
        """Hidden states, the K + 1 interests after every position, and their weights over events.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded, right-aligned (newest at L-1).
            history_times: (B, L) long unix seconds, oldest first.

        Returns:
            A :class:`UserState`. Position l uses positions <= l only (causal).
        """
        hidden, attention = self(history, history_times, return_attention=True)  # (B, L, D), (B, nl, H, L, L)
        batch, length, d = hidden.shape
        now_weights = attention[:, -1].mean(dim=1)  # (B, L, L) last layer, heads averaged: "now" interest's events
        scores = torch.einsum("kd,bjd->bkj", self.interest_queries, hidden) / math.sqrt(d)  # (B, K, L)
        causal = causal_mask(length, device=history.device)[None, :, None, :]  # (1, Lq, 1, Lk), True = j <= l
        real = (history != PAD_ID)[:, None, None, :]  # (B, 1, 1, Lk), True = a real event
        pooled_weights = masked_softmax(scores[:, None].expand(-1, length, -1, -1), causal & real)  # (B, Lq, K, Lk)
        pooled = pooled_weights @ hidden[:, None]  # (B, Lq, K, Lk) @ (B, 1, Lk, D) -> (B, Lq, K, D)
        interests = torch.cat([hidden[:, :, None], pooled], dim=2)  # (B, L, K + 1, D)
        event_weights = torch.cat([now_weights[:, :, None], pooled_weights], dim=2)  # (B, L, K + 1, L)
        return UserState(interests, event_weights, attention)

    def interest_logits(self, interests: Tensor, items: Tensor) -> Tensor:
        """``v_k . f(c)`` of every interest and candidate.

        Args:
            interests: (..., K + 1, D).
            items: (N, D) candidate vectors shared by every row, or (..., N, D) per row.

        Returns:
            (..., K + 1, N).
        """
        if items.ndim == 2:
            return interests @ items.T  # (..., K + 1, D) @ (D, N) -> (..., K + 1, N)
        return interests @ items.transpose(-1, -2)  # (..., K + 1, D) @ (..., D, N) -> (..., K + 1, N)

    def interest_weights(self, interests: Tensor, items: Tensor) -> Tensor:
        """Target attention of each candidate over the interests: ``a_k(c) = softmax_k(v_k . f(c) / tau)``.

        Returns:
            (..., N, K + 1), summing to 1 over the K + 1 interests.
        """
        logits = self.interest_logits(interests, items) / self.config.interest_temperature  # (..., K + 1, N)
        return torch.softmax(logits, dim=-2).transpose(-1, -2)  # (..., N, K + 1)

    def interest_item_scores(self, interests: Tensor, items: Tensor) -> Tensor:
        """Scores ``s(c) = tau log sum_k exp(v_k . f(c) / tau)``: (..., K + 1, D) -> (..., N).

        A smooth maximum over the interests whose gradient with respect to ``v_k . f(c)`` is
        exactly the candidate's attention ``a_k(c)`` (:meth:`interest_weights`).
        """
        tau = self.config.interest_temperature
        if interests.shape[-2] == 1:  # only the current state: the SASRec score h . f(c)
            return self.interest_logits(interests, items).squeeze(-2)
        if interests.shape[-2] == 2 and items.ndim == 2:
            # log(e^a + e^b) = a + softplus(b - a): two contiguous (..., N) products instead of a
            # reduction over a middle axis of size 2 (the same number, about twice as fast on a CPU)
            now, other = interests[..., 0, :], interests[..., 1, :]  # (..., D) each
            return now @ items.T + tau * F.softplus((other - now) @ items.T / tau)  # (..., N)
        logits = self.interest_logits(interests, items)  # (..., K + 1, N)
        return tau * torch.logsumexp(logits / tau, dim=-2)  # (..., N)

    # ------------------------------------------------------------------ the shared interface
    def score_all(self, batch: Batch) -> Tensor:
        """(B, I) scores of every item after the newest history event; column c is item c + 1."""
        with self._one_item_table():
            state = self.user_state(batch.history, batch.history_times)
            return self.interest_item_scores(state.interests[:, -1], self.output_items())  # (B, I)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        """(B, N) scores of candidate ids ``items`` (B, N)."""
        with self._one_item_table():
            state = self.user_state(batch.history, batch.history_times)
            return self.interest_item_scores(state.interests[:, -1], self.embed_items(items))  # (B, N)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Full-catalogue cross-entropy of the next item at every target position (as SASRec)."""
        with self._one_item_table():
            interests = self.user_state(batch.history, batch.history_times).interests  # (B, L, K + 1, D)
            if batch.seq_targets is not None:
                keep = batch.seq_targets != PAD_ID  # (B, L)
                interests, targets = interests[keep], batch.seq_targets[keep]  # (P, K + 1, D), (P,)
            elif batch.targets is not None:
                interests, targets = interests[:, -1], batch.targets  # (B, K + 1, D), (B,)
            else:
                raise ValueError("CapstoneRecommender.loss needs batch.seq_targets (training windows) or batch.targets.")
            scores = self.interest_item_scores(interests, self.output_items())  # (P, I)
        return F.cross_entropy(scores, targets - 1)  # item id t is column t - 1

    # ------------------------------------------------------------------ explanations
    @torch.no_grad()
    def explain(self, batch: Batch, items: Tensor) -> tuple[Tensor, Tensor]:
        """How much each history event contributed to each candidate's score, by attention.

        Args:
            batch: histories (B, L) with ``history_times``.
            items: (B, N) candidate item ids.

        Returns:
            (event weights (B, N, L): ``sum_k a_k(c) A_{k, L-1, :}``, rows sum to 1 over the real
            history events; interest weights (B, N, K + 1): how much candidate c read each interest).
        """
        with self._one_item_table():
            state = self.user_state(batch.history, batch.history_times)
            weights = self.interest_weights(state.interests[:, -1], self.embed_items(items))  # (B, N, K + 1)
        return weights @ state.event_weights[:, -1], weights  # (B, N, K + 1) @ (B, K + 1, L) -> (B, N, L)
