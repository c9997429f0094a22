"""DIN-style target attention: the candidate item is the query over the user's history.

A fixed user vector (matrix factorization, or the mean of the history) must serve every
candidate at once. Target attention (Zhou et al., *Deep Interest Network*, KDD 2018)
builds a *different* user vector for each candidate c, from the history items that
matter for c:

    q_c   = W_Q e_c                                  the candidate asks ...
    k_l   = W_K e_l,  v_l = W_V e_l                  ... every history item l
    w_cl  = softmax_l(q_c . k_l / sqrt(Dh))          over real (non-padding) items only
    u_c   = W_O sum_l w_cl v_l                       a user vector for this candidate
    s(c)  = u_c . e_c + b_c                          the score (a logit of "clicks c")

The attention unit here is **scaled dot-product** attention (the course's
:class:`~course_lib.layers.MultiHeadAttention` used as cross-attention, candidates as
queries, history as keys), not the paper's small MLP on [history, candidate, difference,
product]: a dot product scores all 1,682 candidates x 50 history items of a user in one
matrix product, which the full-ranking evaluation needs, while the MLP would build a
(B, I, L, 4D) tensor. Two further choices differ from the paper and are stated here: the
weights are normalised with a softmax (the paper leaves them unnormalised), and the final
score is a dot product ``u_c . e_c`` plus an item bias instead of an MLP on the
concatenation. With that output layer the **mean-pooling twin** (``pooling="mean"``),
which replaces every weight by 1 / (number of real history items), is exactly "one fixed
user vector for every candidate"; the two models differ in nothing else.

Training is CTR-style: each observed next item is a positive (label 1), ``num_negatives``
uniformly sampled items are negatives (label 0), and the loss is binary cross-entropy on
the logits: the mean over positives plus the mean over negatives, so the two classes weigh
the same however many negatives are drawn. On training windows (``batch.seq_targets``) every position is one example
whose history is the items up to and including that position (a causal mask), so one
window of L events gives L examples for the price of one pass.

DIN knows nothing about order: shuffling the history changes no score. ``recency=True``
(not in the paper) adds a learned vector for "steps back from the newest slot" to every
*key*, so a candidate can prefer recent items, while the values, what an item contributes,
stay the item's own. Histories must then be right-aligned (newest at L-1), as
``evaluation_batches`` and ``training_windows`` build them by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import dot_product_scores, masked_softmax, padding_mask
from ..constants import PAD_ID
from ..data.batch import Batch
from ..layers import LearnedPositionalEncoding, MultiHeadAttention
from .base import Recommender

Pooling = Literal["attention", "mean"]


@dataclass(frozen=True)
class DINConfig:
    num_items: int  # I; items are 1..I, PAD_ID = 0
    d_model: int = 64  # D, the size of item embeddings and of the pooled user vector
    n_heads: int = 1  # H, attention heads (1 keeps one readable weight per history item)
    pooling: Pooling = "attention"  # "attention" = target attention; "mean" = the fixed-vector twin
    num_negatives: int = 64  # uniformly sampled negative items per positive in `loss`
    dropout: float = 0.1  # dropout on the item embeddings of the history during training
    init_std: float = 0.05  # standard deviation of the item (and recency) embedding initialisation
    recency: bool = False  # add a learned "steps back from the newest slot" vector to each key (not in the paper)
    max_len: int = 50  # L, the longest history with a recency vector (only used when recency=True)
    score_chunk: int = 512  # candidates scored at once in `score_all` (bounds memory: B x chunk x L)


class DIN(Recommender):
    """Target attention (or mean pooling) over the history, scored by a dot product with the candidate.

    Args:
        config: a :class:`DINConfig`.
    """

    def __init__(self, config: DINConfig) -> None:
        super().__init__(config.num_items)
        if config.pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {config.pooling!r}.")
        if config.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {config.num_negatives}.")
        self.config = config
        self.item_embedding = nn.Embedding(config.num_items + 1, config.d_model, padding_idx=PAD_ID)  # (I+1, D)
        nn.init.normal_(self.item_embedding.weight, std=config.init_std)
        with torch.no_grad():
            self.item_embedding.weight[PAD_ID].zero_()
        self.item_bias = nn.Parameter(torch.zeros(config.num_items + 1))  # (I+1,) b_c, a popularity term
        self.attention = MultiHeadAttention(config.d_model, config.n_heads)  # W_Q, W_K, W_V, W_O
        # recency: keys (not values) get a vector for "steps back from slot L-1" (right-aligned histories)
        self.recency = LearnedPositionalEncoding(config.d_model, config.max_len, init_std=config.init_std) if config.recency else None
        self.history_dropout = nn.Dropout(config.dropout)

    def _project(self, history: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Queries, keys, output-projected values and candidate embeddings.

        Because the output layer is a dot product, the logit of candidate c is a weighted sum
        over history items: ``s(c) = sum_h sum_l w_hcl g_hcl + b_O . e_c + b_c`` with
        ``g_hcl = (W_O^h v_hl) . e_c`` (W_O^h = the columns of W_O that read head h). So the
        values are projected through W_O per head once, and the (B, N, D) pooled vectors of
        every candidate are never built.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded.
            candidates: (B, N) candidate item ids, or (N,) shared by every user.

        Returns:
            q (B|1, H, N, Dh) (zeros for mean pooling), k (B, H, L, Dh), values_out (B, H, L, D)
            = W_O^h v_hl, and the candidate embeddings (B, N, D) or (N, D).
        """
        shared = candidates.ndim == 1  # the same N candidates for every user (full ranking)
        if history.ndim != 2 or not (shared or (candidates.ndim == 2 and candidates.shape[0] == history.shape[0])):
            raise ValueError(
                f"history must be (B, L) and candidates (B, N) with the same B (or (N,) for all), got "
                f"{tuple(history.shape)} and {tuple(candidates.shape)}."
            )
        mha = self.attention
        keys = self.history_dropout(self.item_embedding(history))  # (B, L, D)
        cand = self.item_embedding(candidates)  # (B, N, D), or (N, D) if shared
        v = mha.split_heads(mha.v_proj(keys))  # (B, H, L, Dh)
        w_out = mha.out_proj.weight.view(mha.d_model, mha.n_heads, mha.d_head)  # (D, H, Dh): W_O^h = w_out[:, h]
        values_out = torch.einsum("bhld,ehd->bhle", v, w_out)  # (B, H, L, D): W_O^h v_hl
        if self.recency is not None:  # where an item sits changes how well it matches, not what it adds
            length = history.shape[1]
            steps_back = torch.arange(length - 1, -1, -1, device=history.device)  # (L,) L-1 .. 0
            keys = self.recency(keys, positions=steps_back)  # (B, L, D)
        k = mha.split_heads(mha.k_proj(keys))  # (B, H, L, Dh)
        if self.config.pooling == "mean":  # equal scores -> uniform weights over the real items
            q = k.new_zeros(1, mha.n_heads, candidates.shape[-1], mha.d_head)  # (1, H, N, Dh)
        else:
            q = mha.q_proj(cand)  # (B, N, D), or (N, D)
            q = mha.split_heads(q[None] if shared else q)  # (B|1, H, N, Dh)
        return q, k, values_out, cand

    def _scores_and_gains(self, history: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """Scores ``q_c . k_l / sqrt(Dh)`` and gains ``g_hcl``, both (B, H, N, L); see :meth:`_project`."""
        q, k, values_out, cand = self._project(history, candidates)
        shared = candidates.ndim == 1
        gains = torch.einsum("bhle,ne->bhnl" if shared else "bhle,bne->bhnl", values_out, cand)  # (B, H, N, L)
        return dot_product_scores(q, k, scale=None).expand_as(gains), gains  # (B, H, N, L)

    def _output_bias(self, candidates: Tensor) -> Tensor:
        """(B, N) or (N,): ``b_O . e_c + b_c``, the part of the logit that does not read the history."""
        cand = self.item_embedding(candidates)  # (B, N, D) or (N, D)
        out_bias = self.attention.out_proj.bias
        pooled_bias = 0.0 if out_bias is None else cand @ out_bias  # (B, N) or (N,)
        return pooled_bias + self.item_bias[candidates]

    def score(
        self, batch: Batch, items: Tensor, *, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Scores (B, N) of candidate ids ``items`` (B, N) given the whole history.

        With ``return_attention`` also the weights (B, H, N, L): row (h, n) is how candidate n
        spreads head h's attention over the history (zero on padding, summing to 1 otherwise).
        """
        logits, weights = self._logits(batch.history, items, need_weights=return_attention)
        return (logits, weights) if return_attention else logits

    def _logits(self, history: Tensor, candidates: Tensor, *, need_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        """Logits (B, N) and weights (B, H, N, L) (None unless ``need_weights``); candidates (B, N) or (N,).

        Without weights the pooling runs in torch's fused ``scaled_dot_product_attention``
        (the same numbers, several times faster; a row with no real item pools to zero there
        as in :func:`~course_lib.attention.masked_softmax`), which full ranking uses.
        """
        mask = padding_mask(history)  # (B, 1, 1, L), True = a real item may be attended
        if need_weights:
            scores, gains = self._scores_and_gains(history, candidates)  # (B, H, N, L) each
            weights = masked_softmax(scores, mask)  # (B, H, N, L), 0 on padding
            return (weights * gains).sum(dim=(1, 3)) + self._output_bias(candidates), weights  # (B, N)
        q, k, values_out, cand = self._project(history, candidates)
        q = q.expand(k.shape[0], -1, -1, -1)  # (B, H, N, Dh)
        pooled = F.scaled_dot_product_attention(q, k, values_out, attn_mask=mask)  # (B, H, N, D)
        pooled = torch.where(mask.any(-1, keepdim=True), pooled, 0.0)  # no real item: zero, on every torch version
        equation = "bhnd,nd->bn" if candidates.ndim == 1 else "bhnd,bnd->bn"
        return torch.einsum(equation, pooled, cand) + self._output_bias(candidates), None  # (B, N)

    def score_all(self, batch: Batch) -> Tensor:
        """Scores (B, I) of every item, ``config.score_chunk`` candidates at a time."""
        items = torch.arange(1, self.num_items + 1, device=batch.history.device)  # (I,)
        columns = [self._logits(batch.history, chunk, need_weights=False)[0] for chunk in items.split(self.config.score_chunk)]
        return torch.cat(columns, dim=1)  # (B, I)

    def prefix_logits(self, history: Tensor, candidates: Tensor) -> Tensor:
        """Logits of every candidate after every prefix of the history, in one pass.

        ``out[b, n, l]`` is the logit of candidate n for a user whose history is
        ``history[b, :l+1]`` (attention restricted to positions <= l, a causal mask). A
        softmax over a prefix is ``exp(s_j) / sum_{j'<=l} exp(s_j')``, so running sums
        (``cumsum``) over j give all L prefixes at the cost of one. Scores are shifted by
        their row maximum first (stable for any realistic score range).

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded.
            candidates: (B, N) item ids.

        Returns:
            (B, N, L) logits; at a prefix with no real item only the bias terms remain.
        """
        scores, gains = self._scores_and_gains(history, candidates)  # (B, H, N, L)
        real = padding_mask(history)  # (B, 1, 1, L), True = a real item
        scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)
        weights = torch.where(real, (scores - scores.amax(dim=-1, keepdim=True)).exp(), 0.0)  # unnormalised
        numerator = (weights * gains).cumsum(dim=-1)  # (B, H, N, L)
        denominator = weights.cumsum(dim=-1).clamp_min(torch.finfo(scores.dtype).tiny)
        return (numerator / denominator).sum(dim=1) + self._output_bias(candidates)[..., None]  # (B, N, L)

    def sample_negatives(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        """Uniform item ids in 1..I of the given shape, drawn on the CPU from ``generator``."""
        return torch.randint(1, self.num_items + 1, shape, generator=generator)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Binary cross-entropy of positives (label 1) plus that of sampled negatives (label 0).

        ``loss = mean_pos -log sigmoid(s+) + mean_neg -log(1 - sigmoid(s-))``: the two classes
        weigh the same in total, however many negatives there are.

        With ``batch.seq_targets`` (training windows) every non-padding position l is one
        example: history = items up to and including l, positive = ``seq_targets[l]``. The
        ``num_negatives`` uniform negatives are drawn once per window and shared by its
        positions (so every prefix scores the same few candidates, see :meth:`prefix_logits`).
        With ``batch.targets`` the whole history predicts one item. A negative equal to the
        positive is ignored. Negatives are drawn on the CPU from ``generator``.
        """
        history = batch.history
        if batch.seq_targets is not None:
            positives = batch.seq_targets  # (B, L); PAD_ID = no example at that position
        elif batch.targets is not None:
            if history.shape[1] == 0:
                raise ValueError("DIN.loss needs a non-empty history.")
            positives = torch.full_like(history, PAD_ID)
            positives[:, -1] = batch.targets  # one example: the prefix that ends at the last position
        else:
            raise ValueError("DIN.loss needs batch.seq_targets (training windows) or batch.targets.")
        batch_size, length = positives.shape
        negatives = self.sample_negatives((batch_size, self.config.num_negatives), generator).to(history.device)  # (B, K)
        candidates = torch.cat([positives, negatives], dim=1)  # (B, L + K): first L are the positives
        logits = self.prefix_logits(history, candidates)  # (B, L + K, L)
        positive_logits = logits[:, :length].diagonal(dim1=1, dim2=2)  # (B, L): positive l after prefix l
        negative_logits = logits[:, length:].transpose(1, 2)  # (B, L, K): negatives after prefix l
        has_example = positives != PAD_ID  # (B, L)
        keep_negative = has_example[..., None] & (negatives[:, None, :] != positives[..., None])  # (B, L, K)
        pos = positive_logits[has_example]
        neg = negative_logits[keep_negative]
        # each class weighs the same in total (averaging over all examples would give the positives
        # only 1 / (1 + K) of the weight, and training is then several times slower)
        return F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos)) + F.binary_cross_entropy_with_logits(
            neg, torch.zeros_like(neg)
        )
