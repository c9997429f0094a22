"""Generative retrieval: a causal decoder reads the history's item codes and spells the next item's code.

    tokens  = [BOS, c_0(i_1), .., c_{C-1}(i_1), BOS, c_0(i_2), ..]     each item as C + 1 tokens
    x_t     = T[token_t] + Lv[level_t] + S[slot_t]                    token, level (0 = BOS), item slot from the newest
    h       = CausalTransformer(dropout(x))                           the course's pre-LN blocks, token t sees tokens <= t
    p(c_l(i_{n+1}) | ..) = softmax(W_l h_{BOS of i_{n+1}} + l)         level l's tokens, read after BOS, c_0 .. c_{l-1}

Training is teacher forcing at every item of a window (every code token of every item is a
target), with one cross-entropy per level over that level's V_l tokens. Recommending is the
trie-constrained beam search of :mod:`.beam_search`: the history is run through the blocks
once (its keys and values kept, as in notebook 14's cache), then every level feeds only the
W beams' new tokens, all W of a user in one sequence whose mask lets each beam see the history
and its own earlier tokens only.

Behind the course's recommender interface, ``score_all`` gives every item in the beam its
summed log-probability and every other item ``-inf``: the evaluation then ranks the beam's
items in order and counts a target outside the beam as a miss (ranked below every item it
ties with, the course's pessimistic rule). HR@K and NDCG@K are exact for K <= beam size; MRR
and AUC are not comparable with a model that scores the whole catalogue (every item outside the
beam shares the last rank).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...attention import causal_mask, padding_mask
from ...constants import PAD_ID
from ...data.batch import Batch
from ...layers import TransformerConfig, TransformerEncoder
from ..base import Recommender, check_fields, init_table
from .beam_search import NextLogProbs, beam_search
from .trie import CodeTrie, check_codes

BOS = 1  # the token that starts every item ("an item follows"); token ids >= 2 are code tokens


@dataclass(frozen=True)
class GenerativeConfig:
    level_sizes: tuple[int, ...]  # V_l, possible tokens at each code level (the last: the disambiguation token)
    max_len: int = 20  # L, history items the decoder reads (each as C + 1 tokens)
    d_model: int = 64  # D, size of every token vector
    n_heads: int = 2  # H, attention heads per block
    n_layers: int = 2  # causal Transformer blocks
    dropout: float = 0.1  # on embeddings, attention weights, FFN and residual branches
    beam_size: int = 20  # W, beams kept while decoding: the length of the recommended list
    init_std: float = 0.02  # standard deviation of the embedding initialisation

    def __post_init__(self) -> None:
        sizes = self.level_sizes
        if not isinstance(sizes, tuple) or not sizes or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in sizes):
            raise ValueError(f"level_sizes must be a non-empty tuple of ints >= 1 (tokens per level), got {sizes!r}.")
        check_fields(self, sizes=("max_len", "d_model", "n_heads", "n_layers", "beam_size"), rates=("dropout",),
                     scales=("init_std",))

    @property
    def levels(self) -> int:
        """C, tokens per item code."""
        return len(self.level_sizes)


class GenerativeRecommender(Recommender):
    """A decoder over item codes, recommending by trie-constrained beam search.

    Args:
        config: a :class:`GenerativeConfig`.
        codes: (I, C) long, every item's unique code (row c = item c + 1), tokens of level l in
            ``0 .. level_sizes[l] - 1``.
    """

    def __init__(self, config: GenerativeConfig, codes: Tensor) -> None:
        check_codes(codes, config.level_sizes)
        super().__init__(codes.shape[0])
        self.config = config
        self.trie = CodeTrie(codes, config.level_sizes)  # plain tensors on the CPU: the constraint, not a weight
        offsets = torch.tensor((0, *config.level_sizes[:-1])).cumsum(0) + 2  # first token id of each level
        tokens = torch.cat([torch.full((1, config.levels), PAD_ID), codes.long() + offsets]).long()  # (I + 1, C)
        self.register_buffer("item_tokens", tokens, persistent=False)  # row PAD_ID: padding tokens
        self.register_buffer("level_offsets", offsets, persistent=False)  # (C,)
        vocab = 2 + sum(config.level_sizes)
        d = config.d_model
        self.token_embedding = init_table(nn.Embedding(vocab, d, padding_idx=PAD_ID), config.init_std)  # T
        self.level_embedding = init_table(nn.Embedding(config.levels + 1, d), config.init_std)  # Lv: 0 = BOS, l + 1 = level l
        self.slot_embedding = init_table(nn.Embedding(config.max_len + 1, d), config.init_std)  # S: 0 = the item being generated
        self.dropout = nn.Dropout(config.dropout)
        self.transformer = TransformerEncoder(TransformerConfig(
            d_model=d, n_heads=config.n_heads, n_layers=config.n_layers, dropout=config.dropout, causal=True))
        self.heads = nn.ModuleList(nn.Linear(d, size) for size in config.level_sizes)  # W_l, b_l

    # ---- the token sequence ------------------------------------------------------------
    def tokenize(self, items: Tensor) -> Tensor:
        """(B, n) item ids -> (B, n * (C + 1)) tokens: [BOS, codes] per item, all PAD_ID for a PAD_ID item."""
        codes = self.item_tokens[items]  # (B, n, C)
        bos = torch.where(items == PAD_ID, PAD_ID, BOS)[..., None]  # (B, n, 1)
        return torch.cat([bos, codes], dim=-1).flatten(1)  # (B, n * (C + 1))

    def embed(self, tokens: Tensor, slots: Tensor, levels: Tensor) -> Tensor:
        """Token + level + slot vectors: (B, T) each -> (B, T, D)."""
        return self.dropout(self.token_embedding(tokens) + self.level_embedding(levels) + self.slot_embedding(slots))

    def _layout(self, n_items: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Slot (items back from the last, 0 = last) and level of each of n * (C + 1) positions."""
        if n_items > self.config.max_len + 1:
            raise ValueError(f"the decoder reads at most max_len = {self.config.max_len} history items, got {n_items - 1}.")
        per_item = self.config.levels + 1
        position = torch.arange(n_items * per_item, device=device)
        return n_items - 1 - position // per_item, position % per_item  # (T,), (T,)

    def forward(self, items: Tensor) -> Tensor:
        """Hidden state after every token of the items' codes (teacher forcing).

        Args:
            items: (B, n) item ids, right-aligned, ``PAD_ID``-padded; n <= max_len + 1.

        Returns:
            (B, n, C + 1, D): ``[:, j, l]`` has read item j's BOS and its tokens before level l.
        """
        if not isinstance(items, Tensor) or items.ndim != 2 or items.dtype != torch.long:
            raise ValueError(f"items must be item ids (B, n) of dtype long, got {getattr(items, 'shape', type(items).__name__)}.")
        tokens = self.tokenize(items)  # (B, T)
        slots, levels = self._layout(items.shape[1], items.device)
        x = self.embed(tokens, slots.expand_as(tokens), levels.expand_as(tokens))  # (B, T, D)
        hidden = self.transformer(x, attn_mask=padding_mask(tokens))  # (B, T, D), causal inside
        return hidden.reshape(items.shape[0], items.shape[1], self.config.levels + 1, -1)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Mean cross-entropy of every code token of every next item (each level over its V_l tokens)."""
        if batch.seq_targets is not None:
            items = torch.cat([batch.history, batch.seq_targets[:, -1:]], dim=1)  # (B, L + 1)
        elif batch.targets is not None:
            items = torch.cat([batch.history, batch.targets[:, None]], dim=1)
        else:
            raise ValueError("GenerativeRecommender.loss needs batch.seq_targets (training windows) or batch.targets.")
        items = items[:, -(self.config.max_len + 1):]
        hidden = self(items)  # (B, n, C + 1, D)
        real = items != PAD_ID  # (B, n)
        if not bool(real.any()):
            raise ValueError("GenerativeRecommender.loss: this batch holds no item to learn from.")
        codes = self.trie.codes.to(items.device)[(items - 1).clamp_min(0)]  # (B, n, C)
        total = hidden.new_zeros(())
        for level, head in enumerate(self.heads):
            logits = head(hidden[:, :, level][real])  # (P, V_l): read after BOS and the tokens before level l
            total = total + F.cross_entropy(logits, codes[:, :, level][real])
        return total / self.config.levels

    # ---- decoding --------------------------------------------------------------------------
    def _run_blocks(self, x: Tensor, past: list[tuple[Tensor, Tensor]] | None, mask: Tensor) -> tuple[Tensor, list]:
        """Run new tokens x (B, t, D) through every block, attending over cached keys/values + their own."""
        kept = []
        for layer, block in enumerate(self.transformer.blocks):
            attention = block.attention
            h = block.norm1(x) if block.norm_first else x
            q = attention.split_heads(attention.q_proj(h))  # (B, H, t, Dh)
            k = attention.split_heads(attention.k_proj(h))
            v = attention.split_heads(attention.v_proj(h))
            if past is not None:
                k, v = torch.cat([past[layer][0], k], dim=2), torch.cat([past[layer][1], v], dim=2)  # (B, H, Th + t, Dh)
            attended, _ = attention.attend(q, k, v, mask)  # (B, t, D)
            if block.norm_first:
                x = x + attended
                x = x + block.feed_forward(block.norm2(x))
            else:
                x = block.norm1(x + attended)
                x = block.norm2(x + block.feed_forward(x))
            kept.append((k, v))
        return self.transformer.final_norm(x), kept

    def decoding(self, history: Tensor) -> NextLogProbs:
        """Run the history once; return ``next_log_probs(prefixes (B, W, l)) -> (B, W, V_l)`` for beam search."""
        if self.training:
            raise RuntimeError("call model.eval() before decoding: dropout would make every beam see a different model.")
        history = history[:, -self.config.max_len:]  # (B, L)
        batch_size, length = history.shape
        tokens = self.tokenize(history)  # (B, Th)
        slots, levels = self._layout(length + 1, history.device)
        th = tokens.shape[1]
        x = self.embed(tokens, slots[:th].expand_as(tokens), levels[:th].expand_as(tokens))
        real = tokens != PAD_ID  # (B, Th)
        _, cache = self._run_blocks(x, None, causal_mask(th, device=tokens.device) & real[:, None, None, :])

        def next_log_probs(prefixes: Tensor) -> Tensor:
            width, level = prefixes.shape[1], prefixes.shape[2]
            t = level + 1  # BOS + the prefix
            bos = torch.full((batch_size, width, 1), BOS, dtype=torch.long, device=prefixes.device)
            new = torch.cat([bos, prefixes + self.level_offsets[:level]], dim=-1)  # (B, W, t)
            new = new.reshape(batch_size, width * t)  # (B, W * t): every beam's block, one after another
            x_new = self.embed(new, torch.zeros_like(new), torch.arange(t, device=new.device).repeat(width).expand_as(new))
            beam = torch.arange(width * t, device=new.device) // t  # which beam each new position belongs to
            within = torch.arange(width * t, device=new.device) % t
            own = (beam[:, None] == beam[None, :]) & (within[None, :] <= within[:, None])  # (W t, W t): own beam, causal
            mask = torch.cat([real[:, None, None, :].expand(-1, 1, width * t, -1),
                              own.expand(batch_size, 1, -1, -1)], dim=-1)  # (B, 1, W t, Th + W t)
            hidden, _ = self._run_blocks(x_new, cache, mask)  # (B, W t, D)
            last = hidden.reshape(batch_size, width, t, -1)[:, :, -1]  # (B, W, D): after the newest token
            return F.log_softmax(self.heads[level](last), dim=-1)  # (B, W, V_l)

        return next_log_probs

    def recommend(self, batch: Batch, *, exclude_seen: bool = True, trie: CodeTrie | None = None) -> tuple[Tensor, Tensor]:
        """The beam's items (B, W) best first and their summed log-probabilities (B, W).

        Args:
            batch: histories (and ``seen``, dropped from the list unless ``exclude_seen`` is False).
            exclude_seen: drop the user's seen items inside the beam.
            trie: the codes the beam may follow (default: the whole catalogue; ``self.trie.subset(items)``
                for a shelf of some items only).
        """
        with torch.no_grad():
            return beam_search(self.decoding(batch.history), self.trie if trie is None else trie, batch_size=len(batch),
                               beam_size=self.config.beam_size, exclude=batch.excluded if exclude_seen else None,
                               device=batch.history.device)

    def score_all(self, batch: Batch, *, trie: CodeTrie | None = None) -> Tensor:
        """(B, I): the beam's items get their log-probability, every other item ``-inf`` (a miss)."""
        items, scores = self.recommend(batch, trie=trie)  # (B, W)
        out = torch.full((len(batch), self.num_items + 1), -torch.inf, device=scores.device)
        out.scatter_(1, items, scores)  # PAD_ID slots land in column 0 with -inf
        return out[:, 1:]


class GenerativeShelf(Recommender):
    """The generative model recommending from a shelf of some items only (its beam follows their codes alone).

    The generative twin of :class:`~course_lib.models.candidate_subset.CandidateSubset`: there, every
    item is scored and the others are masked; here the beam can only spell the shelf's codes.

    Args:
        model: a trained :class:`GenerativeRecommender`.
        items: (N,) item ids on the shelf.
    """

    def __init__(self, model: GenerativeRecommender, items: Tensor) -> None:
        super().__init__(model.num_items)
        self.model = model
        self.shelf = model.trie.subset(items)

    def score_all(self, batch: Batch) -> Tensor:
        return self.model.score_all(batch, trie=self.shelf)
