"""SASRec: causal self-attention over the history predicts the next item (Kang & McAuley, 2018).

    e_l = E[item_l] + P[L-1-l]                      item embedding + learned position
    h   = CausalTransformer(dropout(e))             position l attends to positions <= l only
    s_l = h_l E^T                                   scores of every item after position l

The output layer reuses the input item embeddings ``E`` (weight tying, as in the paper).
Positions are counted back from the newest event (``P[0]`` = the newest slot), which with
right-aligned, left-padded histories is the paper's absolute position for a fixed L and
makes the output independent of how much padding precedes the history.

Training predicts the next item at *every* position of the history, not only the last:
one window of L events gives L training targets for the price of one forward pass. The
loss is the full-catalogue cross-entropy, ``-log softmax(s_l)[target]`` over all I items:
with ML-100K's 1,682 items the exact softmax is one (P, D) x (D, I) product, it has no
sampling bias, and it trains SASRec far better than the paper's binary loss with one
sampled negative (Klenitskiy & Vasilev, RecSys 2023). Sampled softmax only pays off for
catalogues too large to score at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import padding_mask
from ..constants import PAD_ID
from ..data.batch import Batch
from ..layers import LearnedPositionalEncoding, TransformerConfig, TransformerEncoder
from .base import Recommender, item_embedding


@dataclass(frozen=True)
class SASRecConfig:
    num_items: int  # I; items are 1..I, PAD_ID = 0
    max_len: int = 50  # L, the longest history the model reads (one position vector each)
    d_model: int = 64  # D, size of item/position embeddings and of every hidden vector
    n_heads: int = 2  # H, attention heads per block (D divisible by H)
    n_layers: int = 2  # causal Transformer blocks
    dropout: float = 0.2  # on embeddings, attention weights, FFN and residual branches
    norm_first: bool = True  # pre-LN blocks (stable without warm-up); False = post-LN as in the paper
    init_std: float = 0.02  # standard deviation of the item/position embedding initialisation


class SASRec(Recommender):
    """Self-attentive sequential recommendation behind the shared interface.

    Args:
        config: a :class:`SASRecConfig`.
    """

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__(config.num_items)
        self.config = config
        self.item_embedding = item_embedding(config.num_items + 1, config.d_model, config.init_std)  # (I+1, D)
        self.positions = LearnedPositionalEncoding(config.d_model, config.max_len, init_std=config.init_std)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = TransformerEncoder(
            TransformerConfig(
                d_model=config.d_model,
                n_heads=config.n_heads,
                n_layers=config.n_layers,
                dropout=config.dropout,
                norm_first=config.norm_first,
                causal=True,
            )
        )

    def _check_history(self, history: Tensor) -> None:
        if history.ndim != 2 or history.dtype != torch.long:
            raise ValueError(f"history must be item ids (B, L) of dtype long, got {tuple(history.shape)} {history.dtype}.")
        if history.shape[1] > self.config.max_len:
            raise ValueError(
                f"history has L = {history.shape[1]} positions but the model has only max_len = "
                f"{self.config.max_len} position vectors; cut it (evaluation_batches(..., max_len=...))."
            )

    def forward(self, history: Tensor, *, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Hidden state after every position of the history.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded; right-aligned (newest at L-1)
                is what the positions assume.
            return_attention: also return the attention weights of every layer.

        Returns:
            (B, L, D) hidden states (``h_l`` summarises items up to and including l), and
            if asked the weights (B, n_layers, H, L, L); row l is zero beyond l and on padding.
        """
        self._check_history(history)
        length = history.shape[1]
        steps_back = torch.arange(length - 1, -1, -1, device=history.device)  # (L,) L-1 .. 0
        x = self.positions(self.embed_items(history), positions=steps_back)  # (B, L, D)
        x = self.embedding_dropout(x)
        # padding keys are never attended to; the encoder adds (AND) the causal mask itself
        return self.encoder(x, attn_mask=padding_mask(history), return_attention=return_attention)

    def embed_items(self, items: Tensor) -> Tensor:
        """Input vectors of item ids: (...) -> (..., D); ``PAD_ID`` gives the zero vector.

        The one place items become vectors; a subclass may build them from features instead
        (for example text embeddings), and must then override :meth:`output_items` too.
        """
        return self.item_embedding(items)

    def output_items(self) -> Tensor:
        """(I, D) output vectors of items 1..I (row c is item c + 1): tied to the input table."""
        return self.item_embedding.weight[1:]

    def item_scores(self, hidden: Tensor) -> Tensor:
        """Scores of every item from hidden states: (..., D) -> (..., I); column c is item c + 1."""
        return hidden @ self.output_items().T  # (..., I)

    def hidden_states(self, batch: Batch) -> Tensor:
        """(B, L, D) hidden states of a batch; a subclass reading more of the batch (event times) overrides this."""
        return self(batch.history)

    def score_all(self, batch: Batch) -> Tensor:
        hidden = self.hidden_states(batch)  # (B, L, D)
        return self.item_scores(hidden[:, -1])  # (B, I): the state after the newest item

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Mean full-catalogue cross-entropy of the next item at every non-padding position.

        Uses ``batch.seq_targets`` (B, L) (``seq_targets[b, l]`` follows ``history[b, l]``,
        ``PAD_ID`` = no target), or ``batch.targets`` (B,) for the last position only.
        """
        hidden = self.hidden_states(batch)  # (B, L, D)
        if batch.seq_targets is not None:
            keep = batch.seq_targets != PAD_ID  # (B, L)
            hidden, targets = hidden[keep], batch.seq_targets[keep]  # (P, D), (P,)
        elif batch.targets is not None:
            hidden, targets = hidden[:, -1], batch.targets  # (B, D), (B,)
        else:
            raise ValueError("SASRec.loss needs batch.seq_targets (training windows) or batch.targets.")
        return F.cross_entropy(self.item_scores(hidden), targets - 1)  # item id t is column t - 1


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
