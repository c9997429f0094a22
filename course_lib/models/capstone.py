"""The capstone: multimodal items -> time-aware causal self-attention -> K interests -> the candidate picks.

    F         = item_encoder.table()                            (I + 1, D) fused item vectors (ID, image/text/price or text/metadata)
    x_l       = F[item_l] + P[p_l] + T[gap bucket_l]            p_l = l's rank among the real events, oldest = 0; + time gap (notebook 10)
    h         = CausalTransformer(x)                            (B, L, D)   position l sees positions <= l only
    A_{k,l,j} = softmax_{j <= l}(q_k . h_j / sqrt(D))           K learned queries over the prefix (multi-interest)
    v_{l,0}   = h_l,   v_{l,k} = sum_j A_{k,l,j} h_j            K + 1 interests after position l (0 = "now")
    s_l(c)    = tau log sum_k exp(v_{l,k} . F[c] / tau)         the candidate c picks its interests (a smooth max)
    a_k(c)    = softmax_k(v_{l,k} . F[c] / tau) = ds/d(v_k.F[c])  target attention: how much c reads interest k

Every part of the user side is optional: ``num_interests = 0`` leaves only ``v_{l,0} = h_l`` (the
score is SASRec's ``h_l . F[c]``) and ``time_gaps = None`` drops ``T``. Notebook 13's ablation chose
both (:func:`course_lib.bench.capstone_settings`): neither the interests nor the time gaps gave a
validation interval above zero. Positions are counted from the oldest event (``P[p_l]``) so that a
new event moves no earlier one and notebook 14's key/value cache applies (:meth:`as_sasrec`).

It is composed of the course's parts: an item encoder (:mod:`course_lib.models.item_encoders`),
the sequence encoder of every SASRec (:class:`~course_lib.models.sequence_encoder.SequenceEncoder`,
with time gaps), prefix pooling by learned queries (:func:`~course_lib.layers.prefix_attention_pool`)
and a candidate that attends over the interests.

Full-catalogue scoring stays cheap: ``V F^T`` is one (K + 1, D) x (D, I) product per user,
then a log-sum-exp over the K + 1 interests of every column. Training is SASRec's: the
full-catalogue cross-entropy of the next item at every position (every step is causal, so
position l never sees anything after l, tested).

Why the candidate reads *interests* rather than all L history states: DIN-style target
attention over L states would build a (B, I, L) tensor per position in training; reading K + 1
interests keeps it a (K + 1)-row matrix product. The explanation of candidate c is its
attention over the history events, ``sum_k a_k(c) A_{k,l,:}``, where the "now" interest's row is
the last layer's self-attention of position l (averaged over heads); it sums to 1 over the real
events (``attention(batch, items).history``). It is attention, not an exact attribution: the
states h_j mix earlier events too (notebook 15 asks how far attention explains a model).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.batch import Batch
from ..data.time_buckets import TimeBucketConfig
from ..layers import prefix_attention_pool
from .base import AttentionMaps, Recommender, check_candidates, check_targets
from .item_encoders import lookup
from .sasrec import SASRec
from .sequence_encoder import PositionAnchor, SASRecConfig, SequenceEncoder


@dataclass(frozen=True)
class CapstoneConfig(SASRecConfig):
    positions: PositionAnchor = "oldest"  # P[p] for the p-th real event: a new event moves no earlier one (streams, notebook 14)
    time_gaps: TimeBucketConfig | None = TimeBucketConfig()  # time-gap buckets (on by default here)
    num_interests: int = 3  # K, learned interest queries over the history (the current state is one more)
    interest_temperature: float = 1.0  # tau of the candidate's softmax over the K + 1 interests (-> 0: max)

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.num_interests, bool) or not isinstance(self.num_interests, int) or self.num_interests < 0:
            raise ValueError(f"num_interests must be an int >= 0 (0 = only the current state), got {self.num_interests!r}.")
        if not self.interest_temperature > 0:
            raise ValueError(f"interest_temperature must be > 0, got {self.interest_temperature!r}.")


@dataclass(frozen=True)
class UserState:
    """What the capstone computes about a history (see :meth:`CapstoneRecommender.user_state`)."""

    interests: Tensor  # (B, L, K + 1, D) interests after every position; index 0 = the current state h_l
    event_weights: Tensor  # (B, L, K + 1, L) each interest's weights over the history events (rows sum to 1 on real items)
    self_attention: Tensor  # (B, n_layers, H, L, L) the causal self-attention weights


class CapstoneRecommender(Recommender):
    """Time-aware sequence encoder over item vectors from an item encoder, with K interests read by the candidate.

    Args:
        config: a :class:`CapstoneConfig` (its ``d_model`` and ``num_items`` must match the encoder's).
        item_encoder: an item encoder with ``table() -> (I + 1, D)``, e.g.
            :class:`~course_lib.models.multimodal.MultimodalItemEncoder` (ShopWorld) or
            :class:`~course_lib.models.metadata_encoder.MetadataItemEncoder` (MovieLens).
    """

    def __init__(self, config: CapstoneConfig, item_encoder: nn.Module) -> None:
        super().__init__(config.num_items)
        if (getattr(item_encoder, "num_items", None), getattr(item_encoder, "d_model", None)) != (config.num_items, config.d_model):
            raise ValueError(
                f"the item encoder must produce D = {config.d_model} vectors for I = {config.num_items} items; "
                f"it gives D = {getattr(item_encoder, 'd_model', '?')}, I = {getattr(item_encoder, 'num_items', '?')}."
            )
        self.config = config
        self.item_encoder = item_encoder  # F
        self.encoder = SequenceEncoder(config)  # positions + time gaps + causal Transformer
        self.interest_queries = nn.Parameter(torch.randn(config.num_interests, config.d_model) * config.init_std)  # q_k

    # ------------------------------------------------------------------ the user side
    def forward(self, history: Tensor, history_times: Tensor, *, table: Tensor | None = None) -> Tensor:
        """(B, L, D) hidden states of the time-aware causal encoder (``table``: the item table, if computed)."""
        table = self.item_encoder.table() if table is None else table  # (I + 1, D)
        hidden, _ = self.encoder(history, history_times, table=table)
        return hidden

    def user_state(self, history: Tensor, history_times: Tensor, *, table: Tensor | None = None) -> UserState:
        """Hidden states, the K + 1 interests after every position, and their weights over events.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded, right-aligned (newest at L-1).
            history_times: (B, L) long unix seconds, oldest first.
            table: the item table (I + 1, D) if already computed for this call.

        Returns:
            A :class:`UserState`. Position l uses positions <= l only (causal).
        """
        table = self.item_encoder.table() if table is None else table  # (I + 1, D)
        hidden, attention = self.encoder(history, history_times, table=table)  # (B, L, D), (B, nl, H, L, L)
        now_weights = attention[:, -1].mean(dim=1)  # (B, L, L) last layer, heads averaged: "now" interest's events
        if self.config.num_interests == 0:  # only the current state: nothing to pool (and no (B, L, 0, L) graph to train)
            return UserState(hidden[:, :, None], now_weights[:, :, None], attention)  # (B, L, 1, D), (B, L, 1, L)
        scores = torch.einsum("kd,bjd->bkj", self.interest_queries, hidden) / math.sqrt(hidden.shape[-1])  # (B, K, L)
        pooled, pooled_weights = prefix_attention_pool(scores, hidden, history != PAD_ID)  # (B, L, K, D), (B, L, K, L)
        interests = torch.cat([hidden[:, :, None], pooled], dim=2)  # (B, L, K + 1, D)
        event_weights = torch.cat([now_weights[:, :, None], pooled_weights], dim=2)  # (B, L, K + 1, L)
        return UserState(interests, event_weights, attention)

    # ------------------------------------------------------------------ the candidate side
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
        logits = self.interest_logits(interests, items)  # (..., K + 1, N)
        return tau * torch.logsumexp(logits / tau, dim=-2)  # (..., N)

    def interest_item_scores_fast(self, interests: Tensor, items: Tensor) -> Tensor:
        """:meth:`interest_item_scores` with two shortcuts for shared candidates ``items`` (N, D) (equal, tested).

        * K + 1 = 1 (only the current state): the log-sum-exp of one logit is the logit, ``h . f(c)``.
        * K + 1 = 2: ``log(e^a + e^b) = a + softplus(b - a)``: two contiguous (..., N) products
          instead of a reduction over a middle axis of size 2 (about twice as fast on a CPU).
        """
        tau = self.config.interest_temperature
        if items.ndim == 2 and interests.shape[-2] == 1:
            return self.interest_logits(interests, items).squeeze(-2)  # (..., N): the SASRec score h . f(c)
        if items.ndim == 2 and interests.shape[-2] == 2:
            now, other = interests[..., 0, :], interests[..., 1, :]  # (..., D) each
            return now @ items.T + tau * F.softplus((other - now) @ items.T / tau)  # (..., N)
        return self.interest_item_scores(interests, items)

    # ------------------------------------------------------------------ the shared interface
    def score_all(self, batch: Batch) -> Tensor:
        """(B, I) scores of every item after the newest history event; column c is item c + 1."""
        table = self.item_encoder.table()  # (I + 1, D), once for this call
        state = self.user_state(batch.history, batch.history_times, table=table)
        return self.interest_item_scores_fast(state.interests[:, -1], table[1:])  # (B, I)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        """(B, N) scores of candidate ids ``items`` (B, N)."""
        check_candidates(items, self.num_items, len(batch))
        table = self.item_encoder.table()  # (I + 1, D), once for this call
        state = self.user_state(batch.history, batch.history_times, table=table)
        return self.interest_item_scores(state.interests[:, -1], lookup(table, items))  # (B, N)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Full-catalogue cross-entropy of the next item at every target position (as SASRec)."""
        table = self.item_encoder.table()  # (I + 1, D), once for this call
        interests = self.user_state(batch.history, batch.history_times, table=table).interests  # (B, L, K + 1, D)
        if batch.seq_targets is not None:
            keep = batch.seq_targets != PAD_ID  # (B, L)
            interests, targets = interests[keep], batch.seq_targets[keep]  # (P, K + 1, D), (P,)
        elif batch.targets is not None:
            interests, targets = interests[:, -1], batch.targets  # (B, K + 1, D), (B,)
        else:
            raise ValueError("CapstoneRecommender.loss needs batch.seq_targets (training windows) or batch.targets.")
        check_targets(targets, self.num_items, "CapstoneRecommender")
        scores = self.interest_item_scores_fast(interests, table[1:])  # (P, I)
        return F.cross_entropy(scores, targets - 1)  # item id t is column t - 1

    def attention(self, batch: Batch, items: Tensor | None = None) -> AttentionMaps:
        """Self-attention, each interest's weights over the events, and (with candidates ``items`` (B, N))
        each candidate's weights over the interests and over the history events.

        ``history[b, n] = sum_k a_k(c_n) A_{k, L-1, :}``: rows sum to 1 over the real history events.
        """
        with torch.no_grad():
            table = self.item_encoder.table()  # (I + 1, D)
            state = self.user_state(batch.history, batch.history_times, table=table)
            events = state.event_weights[:, -1]  # (B, K + 1, L): after the newest event
            if items is None:
                return AttentionMaps(layers=state.self_attention, interests=events)
            check_candidates(items, self.num_items, len(batch))
            weights = self.interest_weights(state.interests[:, -1], lookup(table, items))  # (B, N, K + 1)
        return AttentionMaps(
            history=weights @ events,  # (B, N, K + 1) @ (B, K + 1, L) -> (B, N, L)
            layers=state.self_attention, interests=events, candidate_interests=weights,
        )

    def as_sasrec(self) -> SASRec:
        """A SASRec that *shares* this capstone's item encoder and sequence encoder (no copy).

        Its hidden states are the capstone's ``h_l``; with K = 0 its scores are the capstone's
        (``s(c) = h . f(c)``, tested). With oldest-anchored positions and no time gaps it streams with
        notebook 14's key/value cache (:func:`course_lib.models.sasrec_streaming.extend`), which
        refuses anything else with a message saying why. With K >= 1 the pooled interests read every
        hidden state of the prefix, so a streaming capstone keeps those (B, T, D) states as well.
        """
        names = [field.name for field in dataclasses.fields(SASRecConfig)]
        view = SASRec(SASRecConfig(**{name: getattr(self.config, name) for name in names}), self.item_encoder)
        view.encoder = self.encoder  # the very same modules: training one trains the other
        return view.train(self.training)

    @property
    def history_lookup(self) -> nn.Module:
        """The module that reads the history's item vectors ``F[item_l]``."""
        return self.encoder.lookup
