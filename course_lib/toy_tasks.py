"""A toy sequence task whose correct attention pattern is known in advance, and a tiny
GPT-style model to learn it (notebook 05).

**Reversal.** A sequence is ``x_0 … x_{L-1} SEP y_0 … y_{L-1}`` with ``y_i = x_{L-1-i}``.
A causal language model reads it left to right and predicts the next token. To write
``y_i`` it stands at the token before it (``SEP`` for i = 0, else ``y_{i-1}``), position
``L + i``, and must fetch the input token at position ``L - 1 - i``. So the head that
does the work should put its attention mass on the *anti-diagonal* of the
(answer positions × input positions) block: query ``L + i`` → key ``L - 1 - i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .constants import PAD_ID
from .layers import LearnedPositionalEncoding, TransformerConfig, TransformerEncoder


@dataclass(frozen=True)
class ReversalTask:
    """Sizes of the reversal task. Token ids: ``PAD_ID = 0``, symbols ``1..n_symbols``, then ``SEP``."""

    length: int = 8  # L: symbols to reverse
    n_symbols: int = 10  # distinct symbols (repeats allowed inside a sequence)

    @property
    def sep_id(self) -> int:
        """The separator token written between the input and its reversal."""
        return self.n_symbols + 1

    @property
    def vocab_size(self) -> int:
        """Number of token ids: padding, the symbols and ``SEP``."""
        return self.n_symbols + 2

    @property
    def seq_len(self) -> int:
        """Full sequence length 2L + 1."""
        return 2 * self.length + 1

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Draw ``n`` sequences ``x SEP reversed(x)``.

        Args:
            n: number of sequences.
            generator: a seeded ``torch.Generator`` (CPU), so the data are reproducible.

        Returns:
            Long tensor (n, 2L + 1).
        """
        x = torch.randint(1, self.n_symbols + 1, (n, self.length), generator=generator)  # (n, L)
        sep = torch.full((n, 1), self.sep_id, dtype=torch.long)  # (n, 1)
        return torch.cat([x, sep, x.flip(1)], dim=1)  # (n, 2L + 1)

    def answer_positions(self) -> Tensor:
        """Positions whose next-token prediction is an answer token: ``L .. 2L-1`` (L,)."""
        return torch.arange(self.length, 2 * self.length)

    def expected_keys(self) -> Tensor:
        """For each answer position ``L + i``, the input position it must read: ``L-1-i`` (L,)."""
        return torch.arange(self.length - 1, -1, -1)


class TinyCausalLM(nn.Module):
    """Token embedding + learned positions + causal :class:`TransformerEncoder` + linear head.

    Args:
        vocab_size: number of token ids (``PAD_ID`` included).
        max_len: longest sequence the positions cover.
        config: the Transformer stack; it is used in causal mode whatever ``config.causal`` says.
    """

    def __init__(self, vocab_size: int, max_len: int, config: TransformerConfig) -> None:
        super().__init__()
        if not config.causal:
            raise ValueError("TinyCausalLM predicts the next token, so it needs config.causal=True.")
        self.token_embedding = nn.Embedding(vocab_size, config.d_model, padding_idx=PAD_ID)
        self.positions = LearnedPositionalEncoding(config.d_model, max_len)
        self.encoder = TransformerEncoder(config)
        self.head = nn.Linear(config.d_model, vocab_size)

    def forward(self, tokens: Tensor, *, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Next-token logits at every position.

        Args:
            tokens: long (B, L); ``PAD_ID`` marks padding (masked as keys).
            return_attention: also return the weights (B, n_layers, H, L, L).

        Returns:
            logits (B, L, V): row t scores the token at position t + 1.
        """
        keep = (tokens != PAD_ID)[:, None, None, :]  # (B, 1, 1, L), True = real token
        x = self.positions(self.token_embedding(tokens))  # (B, L, D)
        out = self.encoder(x, attn_mask=keep, return_attention=return_attention)
        if return_attention:
            hidden, weights = out
            return self.head(hidden), weights  # (B, L, V), (B, n_layers, H, L, L)
        return self.head(out)  # (B, L, V)


@torch.no_grad()
def greedy_decode(model: nn.Module, prompt: Tensor, n_new: int) -> Tensor:
    """Autoregressive decoding: append the most likely next token, ``n_new`` times.

    Each step reruns the model on everything so far (no key/value cache) and keeps only
    the last position's prediction.

    Args:
        model: maps tokens (B, L) to logits (B, L, V).
        prompt: long (B, L0).
        n_new: number of tokens to generate.

    Returns:
        Long tensor (B, L0 + n_new): the prompt followed by the generated tokens.
    """
    tokens = prompt
    for _ in range(n_new):
        logits = model(tokens)  # (B, L, V)
        next_token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
        tokens = torch.cat([tokens, next_token], dim=1)  # (B, L + 1)
    return tokens
