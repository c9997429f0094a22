"""SASRec: causal self-attention over the history predicts the next item (Kang & McAuley, 2018).

    F   = item_encoder.table()                 (I + 1, D)  the item table: E (IDs) by default
    x_l = F[item_l] + P[L-1-l]                 item vector + learned position
    h   = CausalTransformer(dropout(x))        position l attends to positions <= l only
    s_l = h_l F[1:]^T                          scores of every item after position l

The output layer reuses the input item vectors ``F`` (weight tying, as in the paper).
Positions are counted back from the newest event (``P[0]`` = the newest slot), which with
right-aligned, left-padded histories is the paper's absolute position for a fixed L and
makes the output independent of how much padding precedes the history. The encoder (the
middle two lines) is :class:`~course_lib.models.sequence_encoder.SequenceEncoder`.

Training predicts the next item at *every* position of the history, not only the last:
one window of L events gives L training targets for the price of one forward pass. The
loss is the full-catalogue cross-entropy, ``-log softmax(s_l)[target]`` over all I items:
with ML-100K's 1,682 items the exact softmax is one (P, D) x (D, I) product, it has no
sampling bias, and it trains SASRec far better than the paper's binary loss with one
sampled negative (Klenitskiy & Vasilev, RecSys 2023). Sampled softmax only pays off for
catalogues too large to score at once.

The same model, with other parts, is every SASRec of the course:

    SASRec(config)                                            ID table (notebook 08)
    SASRec(SASRecConfig(..., time_gaps=TimeBucketConfig()))   + gap-since-previous-event vectors (notebook 10)
    SASRec(config, item_encoder=TextItemEncoder(...))         frozen text, or ID + text (notebook 11)
    SASRec(config, item_encoder=MultimodalItemEncoder(...))   ID + image + text + price (notebook 12)
    SASRec(SASRecConfig(..., positions="oldest"))             streamable with a key/value cache (notebook 14)

A ``training_catalogue`` (I,) bool (True = the item exists at training time) leaves items
out of the *training* softmax: their logits are the lowest float, so they are neither
positives nor negatives and receive no gradient at all (cold start, notebook 11). Scoring
ranks the whole catalogue.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.batch import Batch
from .base import AttentionMaps, Recommender, check_candidates, check_targets
from .item_encoders import IdEmbedding
from .sequence_encoder import SASRecConfig, SequenceEncoder

__all__ = ["SASRec", "SASRecConfig", "StreamingSASRec", "attention_by_distance"]


class SASRec(Recommender):
    """Self-attentive sequential recommendation behind the shared interface.

    Args:
        config: a :class:`SASRecConfig`.
        item_encoder: where item vectors come from (default: a learned ID table); any item
            encoder of :mod:`course_lib.models.item_encoders` with the same I and D.
        training_catalogue: optional (I,) bool, True = the item may be scored in the training
            softmax (default: every item). Column c is item id c + 1.
    """

    def __init__(
        self, config: SASRecConfig, item_encoder: nn.Module | None = None, *, training_catalogue: Tensor | None = None
    ) -> None:
        super().__init__(config.num_items)
        self.config = config
        if item_encoder is None:
            item_encoder = IdEmbedding(config.num_items, config.d_model, config.init_std)  # E, (I + 1, D)
        if (item_encoder.num_items, item_encoder.d_model) != (config.num_items, config.d_model):
            raise ValueError(
                f"the item encoder must give D = {config.d_model} vectors for I = {config.num_items} items; "
                f"it gives D = {item_encoder.d_model} for I = {item_encoder.num_items}."
            )
        self.item_encoder = item_encoder  # F
        self.encoder = SequenceEncoder(config)  # positions (+ time gaps) + causal Transformer
        if training_catalogue is not None:
            if not isinstance(training_catalogue, Tensor) or training_catalogue.shape != (config.num_items,) \
                    or training_catalogue.dtype != torch.bool:
                got = (f"{tuple(training_catalogue.shape)} {training_catalogue.dtype}"
                       if isinstance(training_catalogue, Tensor) else type(training_catalogue).__name__)
                raise ValueError(f"training_catalogue must be a bool (I,) = ({config.num_items},) tensor, got {got}.")
            if not training_catalogue.any():
                raise ValueError("training_catalogue holds no item; at least one item must be trainable.")
            training_catalogue = training_catalogue.clone()
        self.register_buffer("training_catalogue", training_catalogue, persistent=False)  # (I,) or None

    def forward(self, history: Tensor, history_times: Tensor | None = None, *, table: Tensor | None = None) -> Tensor:
        """Hidden state after every position of the history.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded; right-aligned (newest at L-1).
            history_times: (B, L) unix seconds of each event (read only with time gaps).
            table: the item table (I + 1, D) if already computed for this call.

        Returns:
            (B, L, D) hidden states: ``h_l`` summarises items up to and including l.
        """
        table = self.item_encoder.table() if table is None else table  # (I + 1, D)
        hidden, _ = self.encoder(history, history_times, table=table)
        return hidden

    def item_scores(self, hidden: Tensor, table: Tensor | None = None) -> Tensor:
        """Scores of every item from hidden states: (..., D) -> (..., I); column c is item c + 1."""
        table = self.item_encoder.table() if table is None else table  # (I + 1, D)
        return hidden @ table[1:].T  # (..., I): tied to the input vectors

    def score_all(self, batch: Batch) -> Tensor:
        table = self.item_encoder.table()  # (I + 1, D), once for this call
        hidden = self(batch.history, batch.history_times, table=table)  # (B, L, D)
        return self.item_scores(hidden[:, -1], table)  # (B, I): the state after the newest item

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Mean full-catalogue cross-entropy of the next item at every non-padding position.

        Uses ``batch.seq_targets`` (B, L) (``seq_targets[b, l]`` follows ``history[b, l]``,
        ``PAD_ID`` = no target), or ``batch.targets`` (B,) for the last position only.
        """
        table = self.item_encoder.table()  # (I + 1, D), once for this call
        hidden = self(batch.history, batch.history_times, table=table)  # (B, L, D)
        if batch.seq_targets is not None:
            keep = batch.seq_targets != PAD_ID  # (B, L)
            hidden, targets = hidden[keep], batch.seq_targets[keep]  # (P, D), (P,)
        elif batch.targets is not None:
            hidden, targets = hidden[:, -1], batch.targets  # (B, D), (B,)
        else:
            raise ValueError("SASRec.loss needs batch.seq_targets (training windows) or batch.targets.")
        check_targets(targets, self.num_items, type(self).__name__)
        scores = self.item_scores(hidden, table)  # (P, I)
        if self.training_catalogue is not None:  # items that do not exist yet are not in the softmax
            scores = scores.masked_fill(~self.training_catalogue, torch.finfo(scores.dtype).min)
        return F.cross_entropy(scores, targets - 1)  # item id t is column t - 1

    def attention(self, batch: Batch, items: Tensor | None = None) -> AttentionMaps:
        """Every layer's self-attention; ``history`` = the newest position's row in the last layer, heads averaged.

        In a stack of layers, position l of a later layer already mixes earlier events, so that
        row is a weight on a *mixture*, not on event l alone (notebook 15).
        """
        with torch.no_grad():
            _, weights = self.encoder(batch.history, batch.history_times, table=self.item_encoder.table())
        newest = weights[:, -1].mean(dim=1)[:, -1]  # (B, L): last layer, heads averaged, query = the newest slot
        if items is not None:
            check_candidates(items, self.num_items, len(batch))
        candidates = 1 if items is None else items.shape[1]
        return AttentionMaps(history=newest[:, None].expand(-1, candidates, -1), layers=weights)

    @property
    def history_lookup(self) -> nn.Module:
        """The module that reads the history's item vectors ``e_l = F[item_l]``."""
        return self.encoder.lookup


class StreamingSASRec(SASRec):
    """SASRec whose positions count from the oldest event (``config.positions = "oldest"``).

    Nothing else differs: the same parameters, loss and scores. A new event then never moves
    an earlier one, so a key/value cache stays valid (:mod:`course_lib.models.sasrec_streaming`).
    """

    def __init__(self, config: SASRecConfig, item_encoder: nn.Module | None = None) -> None:
        super().__init__(dataclasses.replace(config, positions="oldest"), item_encoder)


def attention_by_distance(weights: Tensor, history: Tensor) -> tuple[Tensor, Tensor]:
    """The average causal attention weight at each distance d = query position - key position.

    Averaged over every (example, query, key) pair with a real query item and a real key
    item ``d`` steps earlier. A uniform-attention baseline (each real query spreading its
    weight evenly over its ``n`` visible items, ``1 / n`` each) is averaged over the same
    pairs, so a curve above the baseline means "attends to that distance more than chance".

    Args:
        weights: (B, L, L) attention weights of one layer (average or pick heads first);
            row q is query position q.
        history: (B, L) item ids, ``PAD_ID``-padded.

    Returns:
        (mean weight (L,), uniform baseline (L,)); entry d is distance d (0 = the item
        itself); NaN where no pair has that distance.
    """
    if weights.ndim != 3 or weights.shape[0] != history.shape[0] or weights.shape[1:] != (history.shape[1],) * 2:
        raise ValueError(
            f"weights must be (B, L, L) for history (B, L) = {tuple(history.shape)}, got {tuple(weights.shape)}; "
            "pick a layer and average the heads first, e.g. weights[:, layer].mean(1)."
        )
    length = history.shape[1]
    real = history != PAD_ID  # (B, L)
    query, key = torch.arange(length, device=history.device)[:, None], torch.arange(length, device=history.device)
    distance = (query - key).expand(history.shape[0], -1, -1)  # (B, L, L): q - k
    pairs = real[:, :, None] & real[:, None, :] & (distance >= 0)  # (B, L, L) real query, real earlier key
    visible = pairs.sum(dim=-1, keepdim=True).clamp_min(1)  # (B, L, 1) items each query can see
    uniform = pairs / visible  # (B, L, L)
    d = distance[pairs]  # (P,)
    counts = torch.bincount(d, minlength=length).to(weights.dtype)  # (L,)
    mean = torch.bincount(d, weights=weights[pairs], minlength=length) / counts  # (L,), NaN where counts = 0
    baseline = torch.bincount(d, weights=uniform[pairs].to(weights.dtype), minlength=length) / counts
    return mean, baseline
