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
(B, I, L, 4D) tensor. The final score is a dot product ``u_c . e_c`` plus an item bias
instead of an MLP on the concatenation. With that output layer the **mean-pooling twin**
(``pooling="mean"``), which replaces every weight by 1 / (number of real history items), is
exactly "one fixed user vector for every candidate"; the two models differ in nothing else.

**Weights.** ``weights="softmax"`` (the default) normalises the scores over the history, as
above. ``weights="unnormalised"`` is the paper's choice (section 4.3: "normalization with
softmax is abandoned ... to reserve the intensity of user interests"): each history item
gets its own weight ``w_cl = sigmoid(q_c . k_l / sqrt(Dh))`` in (0, 1), with no sum over
the history forcing them to 1, so ``sum_l w_cl`` (between 0 and the number of real items)
measures how strongly the history as a whole matches candidate c, and ``u_c`` grows with it.
(The paper's MLP unit outputs any real number; the sigmoid keeps every weight a soft
"does item l match c?" and the sum a soft count.) With mean pooling every weight is then
``sigmoid(0) = 1/2``: half the sum of the history.

**Objective** (``objective``). ``"bce"`` is CTR-style, the paper's: each observed next item
is a positive (label 1), ``num_negatives`` uniformly sampled items are negatives (label 0),
and the loss is binary cross-entropy on the logits: the mean over positives plus the mean
over negatives, so the two classes weigh the same however many negatives are drawn.
``"softmax"`` is what MF, GRU, SASRec and BERT4Rec train on: the cross-entropy of the next
item against the whole catalogue. On training windows (``batch.seq_targets``) every position
is one example whose history is the items up to and including that position (a causal
mask), so one window of L events gives L examples for the price of one pass.

Readable first, fast second. :meth:`DIN.score` computes the formulas above line by line with
the course's :class:`~course_lib.layers.MultiHeadAttention`; it is the definition. Two speed
paths compute the same numbers (both checked equal to ``score`` in the tests):

* :meth:`DIN.score_all` (full ranking, all I candidates) folds ``W_O`` into the values, so the
  logit is a weighted sum of per-item gains and torch's fused attention kernel can pool them;
* :meth:`DIN.prefix_logits` (training) scores every candidate after every prefix of a window
  in one pass, with running sums of the softmax's numerator and denominator (with recency:
  one small causal matrix product per candidate, see :meth:`DIN._prefix_pool`; mean pooling
  pools once per prefix, its weights being the same for every candidate).

DIN knows nothing about order: shuffling the history changes no score. ``recency=True``
(not in the paper) adds a learned vector for "steps back from the newest slot" to every
*key*, so a candidate can prefer recent items, while the values, what an item contributes,
stay the item's own. Histories must then be right-aligned (newest at L-1), as
``evaluation_batches`` and ``training_windows`` build them by default. The fair twin of
DIN+recency is ``pooling="mean", recency=True``: one learned query (the same for every
candidate) reads only the recency keys, so the weights are a learned function of "steps
back", a recency-weighted mean, again one user vector for every candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..attention import causal_mask, dot_product_scores, masked_softmax, padding_mask
from ..constants import PAD_ID
from ..data.batch import Batch
from ..layers import LearnedPositionalEncoding, MultiHeadAttention, positions_from_newest
from ..layers.multi_head import merge_heads
from .base import (
    AttentionMaps,
    Recommender,
    check_candidates,
    check_fields,
    check_ids,
    check_right_aligned,
    check_targets,
    item_embedding,
)

Pooling = Literal["attention", "mean"]
Objective = Literal["bce", "softmax"]
Weights = Literal["softmax", "unnormalised"]


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
    objective: Objective = "bce"  # "bce": the paper's CTR loss on sampled negatives; "softmax": full-catalogue cross-entropy
    weights: Weights = "softmax"  # "softmax": weights sum to 1 over the history; "unnormalised": sigmoid per item (the paper's)

    def __post_init__(self) -> None:
        check_fields(self, sizes=("num_items", "d_model", "n_heads", "num_negatives", "max_len", "score_chunk"),
                     rates=("dropout",), scales=("init_std",))
        if self.pooling not in ("attention", "mean"):
            raise ValueError(f"DINConfig.pooling must be 'attention' or 'mean', got {self.pooling!r}.")
        if self.objective not in ("bce", "softmax"):
            raise ValueError(f"DINConfig.objective must be 'bce' or 'softmax', got {self.objective!r}.")
        if self.weights not in ("softmax", "unnormalised"):
            raise ValueError(f"DINConfig.weights must be 'softmax' or 'unnormalised', got {self.weights!r}.")
        if self.weights == "unnormalised" and self.recency:
            raise ValueError("DINConfig(weights='unnormalised') does not combine with recency=True: the sigmoid of "
                             "content + recency scores does not split into running sums over prefixes, so training "
                             "would need one (L, L) block per candidate. Use weights='softmax' with recency.")


def _scores(q: Tensor, k: Tensor) -> Tensor:
    """(B, H, N, L) scaled dot products of queries (B|1, H, N, Dh) with keys (B, H, L, Dh).

    Queries shared by every user (the catalogue) make one (N, Dh) x (Dh, B L) matrix product per head
    instead of B small ones.
    """
    if q.shape[0] == 1 and k.shape[0] > 1:
        return torch.einsum("hnd,bhld->bhnl", q[0], k) / math.sqrt(q.shape[-1])
    return dot_product_scores(q, k, scale=None)


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
        self.item_embedding = item_embedding(config.num_items + 1, config.d_model, config.init_std)  # (I+1, D)
        self.item_bias = nn.Parameter(torch.zeros(config.num_items + 1))  # (I+1,) b_c, a popularity term
        self.attention_layer = MultiHeadAttention(config.d_model, config.n_heads)  # W_Q, W_K, W_V, W_O
        # recency: keys (not values) get a vector for "steps back from slot L-1" (right-aligned histories)
        self.recency = LearnedPositionalEncoding(config.d_model, config.max_len, init_std=config.init_std) if config.recency else None
        # the mean twin of DIN+recency: one learned query, the same for every candidate, reads the recency keys
        self.pool_query = (nn.Parameter(torch.randn(config.d_model) * config.init_std)  # (D,) = (H * Dh,)
                           if config.recency and config.pooling == "mean" else None)
        self.history_dropout = nn.Dropout(config.dropout)

    # ------------------------------------------------------------------ the definition
    def _history_values(self, history: Tensor) -> Tensor:
        """(B, L, D) the history's item vectors ``e_l`` (dropout while training), ids checked."""
        check_ids(history, max_len=self.config.max_len if self.recency is not None else None, num_ids=self.num_items)
        return self.history_dropout(self.item_embedding(history))  # (B, L, D) e_l

    def _history_vectors(self, history: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of the history, both (B, L, D): ``e_l``, keys plus the recency vector if any."""
        values = self._history_values(history)  # (B, L, D) e_l
        keys = values
        if self.recency is not None:  # where an item sits changes how well it matches, not what it adds
            check_right_aligned(history, "DIN with recency")
            content = values if self.config.pooling == "attention" else torch.zeros_like(values)  # mean twin: recency only
            keys = self.recency(content, positions=positions_from_newest(history.shape[1], device=history.device))
        return keys, values

    def _queries(self, cand: Tensor) -> Tensor:
        """(B|1, H, N, Dh) queries ``W_Q e_c`` of candidate vectors (B, N, D) or (N, D).

        Mean pooling: zeros (equal scores, uniform weights over the real items), or with recency the
        learned ``pool_query``, the same for every candidate.
        """
        mha = self.attention_layer
        if self.config.pooling == "mean":
            if self.pool_query is None:  # equal scores -> uniform weights over the real items
                return cand.new_zeros(1, mha.n_heads, cand.shape[-2], mha.d_head)
            return self.pool_query.view(1, mha.n_heads, 1, mha.d_head).expand(-1, -1, cand.shape[-2], -1)
        q = mha.q_proj(cand)  # (B, N, D) or (N, D)
        return mha.split_heads(q[None] if cand.ndim == 2 else q)  # (B|1, H, N, Dh)

    def target_attention(self, history: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """The user vector of each candidate and its weights: ``u_c = W_O sum_l w_cl W_V e_l``.

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded.
            candidates: (B, N) candidate item ids.

        Returns:
            u (B, N, D) and the weights w (B, H, N, L): zero on padding; summing to 1 otherwise, or with
            ``weights="unnormalised"`` each in (0, 1), their sum the match strength of the candidate.
        """
        check_candidates(candidates, self.num_items, history.shape[0])
        mha = self.attention_layer
        keys, values = self._history_vectors(history)  # (B, L, D) each
        q = self._queries(self.item_embedding(candidates)).expand(history.shape[0], -1, -1, -1)  # (B, H, N, Dh)
        k, v = mha.split_heads(mha.k_proj(keys)), mha.split_heads(mha.v_proj(values))  # (B, H, L, Dh) each
        if self.config.weights == "softmax":
            return mha.attend(q, k, v, padding_mask(history))  # (B, N, D), (B, H, N, L)
        weights = self._unnormalised(dot_product_scores(q, k, scale=None), padding_mask(history))  # (B, H, N, L)
        return mha.out_proj(merge_heads(weights @ v)), weights  # (B, N, D), (B, H, N, L)

    @staticmethod
    def _unnormalised(scores: Tensor, attn_mask: Tensor) -> Tensor:
        """The paper's weights: ``sigmoid(score)`` for every visible item on its own, 0 where ``attn_mask`` is False."""
        return torch.where(attn_mask, torch.sigmoid(scores), 0.0)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        """Scores (B, N) of candidate ids ``items`` (B, N): ``s(c) = u_c . e_c + b_c``."""
        user, _ = self.target_attention(batch.history, items)  # (B, N, D)
        return (user * self.item_embedding(items)).sum(dim=-1) + self.item_bias[items]  # (B, N)

    def attention(self, batch: Batch, items: Tensor | None = None) -> AttentionMaps:
        """Target attention of candidates ``items`` (B, N) over the history (required: it depends on the candidate)."""
        if items is None:
            raise ValueError("DIN's attention depends on the candidate: pass items (B, N), e.g. batch.targets[:, None].")
        with torch.no_grad():
            _, weights = self.target_attention(batch.history, items)  # (B, H, N, L)
        return AttentionMaps(history=weights.mean(dim=1), target=weights)

    def target_scores(self, history: Tensor, candidates: Tensor) -> Tensor:
        """(B, H, N, L) attention scores ``q_c . k_l / sqrt(Dh)`` before the softmax (candidates (B, N) or (N,))."""
        keys, _ = self._history_vectors(history)
        k = self.attention_layer.split_heads(self.attention_layer.k_proj(keys))  # (B, H, L, Dh)
        q = self._queries(self.item_embedding(candidates))  # (B|1, H, N, Dh)
        return dot_product_scores(q, k, scale=None).expand(k.shape[0], -1, -1, -1)  # (B, H, N, L)

    def prefix_weights(self, history: Tensor, candidates: Tensor) -> Tensor:
        """The weights DIN uses when candidate l is scored after prefix l (how training reads a window).

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded.
            candidates: (B, L) item ids; ``candidates[:, l]`` is scored after ``history[:, :l+1]``
                (in a training window: the positive ``seq_targets[:, l]``).

        Returns:
            (B, H, L, L): row l spreads over the real positions ``<= l`` and sums to 1 there.
        """
        if candidates.shape != history.shape:
            raise ValueError(f"candidates must be (B, L) like history {tuple(history.shape)}, got {tuple(candidates.shape)}.")
        visible = padding_mask(history) & causal_mask(history.shape[1], device=history.device)  # (B, 1, L, L)
        if self.config.weights == "unnormalised":  # no recency (refused by the config)
            return self._unnormalised(self.target_scores(history, candidates), visible)  # (B, H, L, L)
        if self.recency is None:
            return masked_softmax(self.target_scores(history, candidates), visible)  # (B, H, L, L)
        content, by_distance = self._content_and_recency_scores(self._history_values(history), candidates)  # (B, H, L, L) each
        length = history.shape[1]
        slots = torch.arange(length, device=history.device)  # (L,)
        back = (slots[:, None] - slots).clamp_min(0)  # (L, L): row l, column j holds l - j
        recency = by_distance.gather(-1, back.expand_as(by_distance))  # (B, H, L, L): row l reads distance l - j
        return masked_softmax(content + recency, visible)  # (B, H, L, L)

    def _content_and_recency_scores(self, values: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """The two parts of a recency model's attention scores, kept apart so that prefixes can reuse them.

        ``k_l = W_K (e_l + r_d) + b_K = (W_K e_l + b_K) + W_K r_d``, so ``q . k_l`` splits into a content
        score (one per history slot) and a recency score (one per distance ``d`` back from the newest item
        of whatever prefix is read). The mean twin's keys hold no content (its content score is
        ``q . b_K``, the same for every slot).

        Args:
            values: (B, L, D) the history's item vectors ``e_l`` (after dropout).
            candidates: (B, N) item ids, or (N,) shared by every user.

        Returns:
            content (B|1, H, N, L) and recency (B|1, H, N, L) with column d = distance d; both already
            scaled by ``1 / sqrt(Dh)``.
        """
        mha = self.attention_layer
        content_values = values if self.config.pooling == "attention" else torch.zeros_like(values)
        content_keys = mha.split_heads(mha.k_proj(content_values))  # (B, H, L, Dh)
        distances = self.recency.embedding.weight[: values.shape[1]]  # (L, D) r_d for d = 0 .. L-1
        recency_keys = mha.split_heads(F.linear(distances, mha.k_proj.weight)[None])  # (1, H, L, Dh) W_K r_d
        q = self._queries(self.item_embedding(candidates))  # (B|1, H, N, Dh)
        content = _scores(q, content_keys)  # (B, H, N, L)
        return content, dot_product_scores(q, recency_keys, scale=None)  # (B|1, H, N, L)

    # ------------------------------------------------------------------ speed paths (equal to score, tested)
    def _folded(self, history: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Queries, keys, output-projected values and candidate embeddings, with ``W_O`` folded into the values.

        Because the output layer is a dot product, the logit of candidate c is a weighted sum
        over history items: ``s(c) = sum_h sum_l w_hcl g_hcl + b_O . e_c + b_c`` with
        ``g_hcl = (W_O^h v_hl) . e_c`` (W_O^h = the columns of W_O that read head h). So the
        values are projected through W_O per head once, and the (B, N, D) pooled vectors of
        every candidate are never built.

        Returns:
            q (B|1, H, N, Dh), k (B, H, L, Dh), values_out (B, H, L, D) = W_O^h v_hl, and the
            candidate embeddings (B, N, D) or (N, D).
        """
        mha = self.attention_layer
        keys, values = self._history_vectors(history)  # (B, L, D)
        cand = self.item_embedding(candidates)  # (B, N, D), or (N, D) if shared
        values_out = self._values_out(values)  # (B, H, L, D): W_O^h v_hl
        k = mha.split_heads(mha.k_proj(keys))  # (B, H, L, Dh)
        return self._queries(cand), k, values_out, cand

    def _values_out(self, values: Tensor) -> Tensor:
        """(B, H, L, D): each head's values projected through its columns of W_O, ``W_O^h v_hl``."""
        mha = self.attention_layer
        v = mha.split_heads(mha.v_proj(values))  # (B, H, L, Dh)
        w_out = mha.out_proj.weight.view(mha.d_model, mha.n_heads, mha.d_head)  # (D, H, Dh): W_O^h = w_out[:, h]
        return torch.einsum("bhld,ehd->bhle", v, w_out)

    def _output_bias(self, candidates: Tensor) -> Tensor:
        """(B, N) or (N,): ``b_O . e_c + b_c``, the part of the logit that does not read the history."""
        cand = self.item_embedding(candidates)  # (B, N, D) or (N, D)
        out_bias = self.attention_layer.out_proj.bias
        pooled_bias = 0.0 if out_bias is None else cand @ out_bias  # (B, N) or (N,)
        return pooled_bias + self.item_bias[candidates]

    def _fast_logits(self, history: Tensor, candidates: Tensor) -> Tensor:
        """Logits (B, N) of candidates (N,) shared by every user, pooled by torch's fused attention.

        A row with no real item pools to zero (as :func:`~course_lib.attention.masked_softmax` does).
        """
        q, k, values_out, cand = self._folded(history, candidates)
        mask = padding_mask(history)  # (B, 1, 1, L), True = a real item may be attended
        if self.config.pooling == "mean":  # the same weights for every candidate: pool once, for the first
            q = q[:, :, :1]
        q = q.expand(k.shape[0], -1, -1, -1)  # (B, H, N, Dh), or (B, H, 1, Dh) for mean pooling
        if self.config.weights == "unnormalised":
            pooled = self._unnormalised(dot_product_scores(q, k, scale=None), mask) @ values_out  # (B, H, N, D)
        else:
            pooled = F.scaled_dot_product_attention(q, k, values_out, attn_mask=mask)  # (B, H, N, D)
            pooled = torch.where(mask.any(-1, keepdim=True), pooled, 0.0)  # no real item: zero, on every torch version
        if self.config.pooling == "mean":
            equation = "bhd,nd->bn" if candidates.ndim == 1 else "bhd,bnd->bn"
            return torch.einsum(equation, pooled[:, :, 0], cand) + self._output_bias(candidates)  # (B, N)
        equation = "bhnd,nd->bn" if candidates.ndim == 1 else "bhnd,bnd->bn"
        return torch.einsum(equation, pooled, cand) + self._output_bias(candidates)  # (B, N)

    def score_all(self, batch: Batch) -> Tensor:
        """Scores (B, I) of every item, ``config.score_chunk`` candidates at a time (the folded speed path)."""
        items = torch.arange(1, self.num_items + 1, device=batch.history.device)  # (I,)
        columns = [self._fast_logits(batch.history, chunk) for chunk in items.split(self.config.score_chunk)]
        return torch.cat(columns, dim=1)  # (B, I)

    def prefix_logits(self, history: Tensor, candidates: Tensor) -> Tensor:
        """Logits of every candidate after every prefix of the history, in one pass.

        ``out[b, n, l]`` is the logit of candidate n for a user whose history is
        ``history[b, :l+1]`` (attention restricted to positions <= l, a causal mask): what
        :meth:`score` gives for that prefix. A softmax over a prefix is
        ``exp(s_j) / sum_{j'<=l} exp(s_j')``, so running sums (``cumsum``) over j give all L
        prefixes at the cost of one (see :meth:`_prefix_pool`).

        Args:
            history: (B, L) item ids, ``PAD_ID``-padded.
            candidates: (B, N) item ids, or (N,) ids shared by every user (the whole catalogue for
                the softmax objective: one matrix product instead of B).

        Returns:
            (B, N, L) logits; at a prefix with no real item only the bias terms remain.
        """
        mha = self.attention_layer
        values = self._history_values(history)  # (B, L, D) e_l
        cand = self.item_embedding(candidates)  # (B, N, D) or (N, D)
        values_out = self._values_out(values)  # (B, H, L, D): W_O^h v_hl
        if self.config.pooling == "mean":  # the weights do not depend on the candidate: pool once per prefix
            weights = self.prefix_weights(history, torch.ones_like(history))  # (B, H, L, L); the candidate is ignored
            pooled = weights @ values_out  # (B, H, L, D): one user vector per prefix (summed over heads below)
            equation = "bhld,nd->bnl" if candidates.ndim == 1 else "bhld,bnd->bnl"
            return torch.einsum(equation, pooled, cand) + self._output_bias(candidates)[..., None]  # (B, N, L)
        equation = "bhle,ne->bhnl" if candidates.ndim == 1 else "bhle,bne->bhnl"
        gains = torch.einsum(equation, values_out, cand)  # (B, H, N, L): g_hcl
        if self.recency is None:
            keys = mha.split_heads(mha.k_proj(values))  # (B, H, L, Dh)
            scores, recency = _scores(self._queries(cand), keys), None  # (B, H, N, L)
        else:
            scores, recency = self._content_and_recency_scores(values, candidates)  # (B, H, N, L), (B|1, H, N, L)
        pooled = self._prefix_pool(scores.expand_as(gains), recency, gains, padding_mask(history))  # (B, H, N, L)
        return pooled.sum(dim=1) + self._output_bias(candidates)[..., None]  # (B, N, L)

    def _prefix_pool(self, scores: Tensor, recency: Tensor | None, gains: Tensor, real: Tensor) -> Tensor:
        """(B, H, N, L): entry l is ``sum_(j<=l) w_j g_j`` with the weights prefix l would give.

        Without recency the weights of prefix l are a softmax over j <= l (or sigmoids, unnormalised),
        so running sums give every prefix. With recency, slot j of prefix l is ``l - j`` steps back and
        scores ``c_j + r_(l-j)`` (content plus recency, see :meth:`_content_and_recency_scores`), so the
        softmax's sums are ``sum_(j<=l) exp(c_j) x_j exp(r_(l-j))``: a lower-triangular (L, L) matrix
        ``T[l, j] = exp(r_(l-j))`` per (head, candidate) times the vector ``exp(c_j) x_j``, one batched
        matrix product. Scores are shifted by their maximum before ``exp`` (the shifts cancel in the
        ratio; stable for any realistic score range).

        Args:
            scores: (B, H, N, L) content scores. recency: None or (B|1, H, N, L), column d = distance d.
            gains: (B, H, N, L) ``g_hcl``. real: (B, 1, 1, L) bool, True = a real item.
        """
        if self.config.weights == "unnormalised":  # no recency (refused by the config)
            return (self._unnormalised(scores, real) * gains).cumsum(dim=-1)
        scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)
        exp_scores = torch.where(real, (scores - scores.amax(dim=-1, keepdim=True)).exp(), 0.0)  # unnormalised
        both = torch.stack([exp_scores * gains, exp_scores])  # (2, B, H, N, L): numerator and denominator terms
        if recency is None:
            sums = both.cumsum(dim=-1)
        else:
            length = scores.shape[-1]
            slots = torch.arange(length, device=scores.device)  # (L,)
            back = (slots[:, None] - slots).clamp_min(0)  # (L, L): row l, column j holds l - j
            kernel = (recency - recency.amax(dim=-1, keepdim=True)).exp()  # (B|1, H, N, L) exp(r_d), <= 1
            toeplitz = torch.where(slots[:, None] >= slots, kernel[..., back], 0.0)  # (B|1, H, N, L, L)
            if toeplitz.shape[0] == 1:  # the same kernel for every user: one (L, L) matrix per (head, candidate)
                sums = torch.einsum("hnlj,sbhnj->sbhnl", toeplitz[0], both)
            else:
                sums = torch.einsum("bhnlj,sbhnj->sbhnl", toeplitz, both)
        numerator, denominator = sums.unbind(0)  # (B, H, N, L) each
        return numerator / denominator.clamp_min(torch.finfo(scores.dtype).tiny)  # a prefix with no real item: 0

    # ------------------------------------------------------------------ training
    def sample_negatives(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        """Uniform item ids in 1..I of the given shape, drawn on the CPU from ``generator``."""
        return torch.randint(1, self.num_items + 1, shape, generator=generator)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Binary cross-entropy of positives (label 1) plus that of sampled negatives (label 0).

        (With ``config.objective == "softmax"``: the full-catalogue cross-entropy instead, see
        :meth:`_softmax_loss`; nothing is sampled.)

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
        check_targets(positives[positives != PAD_ID], self.num_items, "DIN")
        if self.config.objective == "softmax":
            return self._softmax_loss(history, positives)
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

    def _softmax_loss(self, history: Tensor, positives: Tensor) -> Tensor:
        """Cross-entropy of each prefix's next item against the whole catalogue (what MF and SASRec train on).

        ``loss = mean over examples of -log softmax_c(s_l(c))[positive_l]`` with the logits of every item c
        after every prefix l from :meth:`prefix_logits` (the catalogue shared by every user). No negatives
        are sampled.
        """
        items = torch.arange(1, self.num_items + 1, device=history.device)  # (I,)
        logits = self.prefix_logits(history, items)  # (B, I, L): every item after every prefix
        has_example = positives != PAD_ID  # (B, L)
        log_normaliser = logits.logsumexp(dim=1)  # (B, L)
        positive_logits = logits.gather(1, (positives - 1).clamp_min(0)[:, None]).squeeze(1)  # (B, L)
        return (log_normaliser - positive_logits)[has_example].mean()

    @property
    def history_lookup(self) -> nn.Module:
        """The module that embeds the history items (it embeds the candidates too; gradient x input tells them apart)."""
        return self.item_embedding
