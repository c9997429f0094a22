"""A text encoder: token embeddings → self-attention over the real tokens → masked mean.

    z_0    = E[t_1 .. t_T]                       (B, T, D)
    Z      = TransformerEncoder(z_0, attn_mask)  (B, T, D)   keys that are padding are hidden
    pooled = mean over real tokens of Z          (B, D)

ShopWorld's words are shuffled (the order carries nothing), so by default no positions
are added: the encoder is then permutation-invariant, as a bag of words should be.
Padding uses the course's one convention: ``padding_mask(tokens, pad_id)``, True = may
attend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...attention import padding_mask
from ...layers import LearnedPositionalEncoding, TransformerConfig, TransformerEncoder, masked_mean
from ..base import check_fields
from .states import ModalityStates


@dataclass(frozen=True)
class TextEncoderConfig:
    vocab_size: int  # number of token ids, padding included (len(world.vocabulary))
    pad_id: int = 0  # token id of padding (ShopWorld's TEXT_PAD)
    d_model: int = 32  # D, size of every token state
    n_heads: int = 2  # H, attention heads per block
    n_layers: int = 1  # bidirectional Transformer blocks over the tokens
    dropout: float = 0.1  # dropout inside the blocks
    max_tokens: int = 0  # > 0: add learned positions for texts up to this length; 0 = order-free

    def __post_init__(self) -> None:
        check_fields(self, sizes=("vocab_size", "d_model", "n_heads", "n_layers"), counts=("pad_id", "max_tokens"),
                     rates=("dropout",))


class TextEncoder(nn.Module):
    """Token embeddings + self-attention + masked mean pooling.

    Args:
        config: a :class:`TextEncoderConfig`.
    """

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model, padding_idx=config.pad_id)
        self.positions = LearnedPositionalEncoding(config.d_model, config.max_tokens) if config.max_tokens else None
        self.encoder = TransformerEncoder(
            TransformerConfig(
                d_model=config.d_model, n_heads=config.n_heads, n_layers=config.n_layers,
                dropout=config.dropout, causal=False,
            )
        )

    def forward(self, tokens: Tensor, *, return_attention: bool = False) -> ModalityStates:
        """Encode token-id texts.

        Args:
            tokens: (B, T) long token ids, ``pad_id``-padded.
            return_attention: also return the token × token weights of every layer.

        Returns:
            :class:`ModalityStates` with pooled (B, D) (zero for an all-padding text),
            states (B, T, D), token_mask (B, T) (True = real token) and attention
            (B, n_layers, H, T, T) if asked (zero in columns of padding tokens).
        """
        if not isinstance(tokens, Tensor) or tokens.ndim != 2 or tokens.dtype != torch.long:
            what = f"{tuple(tokens.shape)} {tokens.dtype}" if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must be token ids (B, T) of dtype long, got {what}.")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.config.vocab_size):
            raise ValueError(
                f"token ids must lie in 0..{self.config.vocab_size - 1}, got {int(tokens.min())}..{int(tokens.max())}."
            )
        x = self.token_embedding(tokens)  # (B, T, D)
        if self.positions is not None:
            x = self.positions(x)
        mask = padding_mask(tokens, self.config.pad_id)  # (B, 1, 1, T), True = real key
        if return_attention:
            states, attention = self.encoder(x, attn_mask=mask, return_attention=True)
        else:
            states, attention = self.encoder(x, attn_mask=mask), None
        token_mask = tokens != self.config.pad_id  # (B, T)
        return ModalityStates(masked_mean(states, token_mask), states, token_mask, attention)
