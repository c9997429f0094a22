"""The Transformer block and a stack of them (an "encoder" in either of two modes).

One block = multi-head self-attention + position-wise feed-forward network, each wrapped
in a residual connection, LayerNorm and dropout. Two placements of the LayerNorm:

* post-LN (original Transformer, BERT): ``x = LN(x + Drop(Sublayer(x)))``
* pre-LN  (GPT-2 and most modern models): ``x = x + Drop(Sublayer(LN(x)))``, plus one
  final LayerNorm after the last block. Trains stably without learning-rate warm-up.

The stack is the same code for both famous families; only the mask differs:

* ``causal=False``: bidirectional, BERT-style (BERT4Rec): every position sees every
  non-padded position;
* ``causal=True``: causal, decoder-only GPT-style (SASRec): position i sees positions <= i.

Mask convention: boolean ``attn_mask``, True = may attend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..attention import causal_mask, combine_masks
from .feed_forward import Activation, PositionWiseFeedForward
from .multi_head import MultiHeadAttention


@dataclass
class TransformerConfig:
    """Hyper-parameters of a Transformer stack (and of each of its blocks)."""

    d_model: int = 64  # D: size of every token vector flowing through the stack
    n_heads: int = 4  # H: attention heads per block; D must be divisible by H
    n_layers: int = 2  # number of stacked blocks
    d_ff: int | None = None  # hidden size of the feed-forward network; None = 4 * D
    dropout: float = 0.1  # dropout on attention weights, FFN hidden units and both residual branches
    norm_first: bool = True  # True = pre-LN (GPT-2 style), False = post-LN (original Transformer, BERT)
    causal: bool = False  # True = position i attends only to positions <= i (GPT/SASRec); False = bidirectional (BERT)
    activation: Activation = "gelu"  # non-linearity inside the feed-forward network: "gelu" or "relu"
    layer_norm_eps: float = 1e-5  # epsilon inside every LayerNorm

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model (D = {self.d_model}) must be divisible by n_heads (H = {self.n_heads})."
            )
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {self.n_layers}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}.")

    @property
    def ffn_dim(self) -> int:
        """The feed-forward hidden size actually used."""
        return 4 * self.d_model if self.d_ff is None else self.d_ff


class TransformerBlock(nn.Module):
    """Self-attention and feed-forward sublayers with residuals, LayerNorm and dropout.

    Args:
        config: sizes, dropout and ``norm_first`` (pre-LN vs post-LN). ``config.causal``
            is not used here: the block applies whatever ``attn_mask`` it is given.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm_first = config.norm_first
        self.attention = MultiHeadAttention(config.d_model, config.n_heads, config.dropout)
        self.feed_forward = PositionWiseFeedForward(
            config.d_model, config.ffn_dim, config.dropout, config.activation
        )
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)  # around attention
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)  # around the FFN
        self.dropout1 = nn.Dropout(config.dropout)  # on the attention branch
        self.dropout2 = nn.Dropout(config.dropout)  # on the FFN branch

    def _self_attention(self, x: Tensor, attn_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        out, weights = self.attention(query=x, attn_mask=attn_mask, return_attention=True)
        return self.dropout1(out), weights  # (B, L, D), (B, H, L, L)

    def forward(
        self, x: Tensor, *, attn_mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Apply the block.

        Args:
            x: (B, L, D).
            attn_mask: bool broadcastable to (B, H, L, L); True = may attend.
            return_attention: also return this block's attention weights.

        Returns:
            (B, L, D), and if ``return_attention`` the weights (B, H, L, L).
        """
        if self.norm_first:  # pre-LN: normalise the sublayer's input, keep the residual stream raw
            attended, weights = self._self_attention(self.norm1(x), attn_mask)
            x = x + attended  # (B, L, D)
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))  # (B, L, D)
        else:  # post-LN: normalise after adding the residual
            attended, weights = self._self_attention(x, attn_mask)
            x = self.norm1(x + attended)  # (B, L, D)
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))  # (B, L, D)
        return (x, weights) if return_attention else x


class TransformerEncoder(nn.Module):
    """A stack of :class:`TransformerBlock`; causal (GPT-style) or bidirectional (BERT-style).

    The input is already embedded (token/item embeddings plus positions); the output has
    the same shape. With ``config.norm_first`` a final LayerNorm follows the last block.

    Args:
        config: see :class:`TransformerConfig`; ``config.causal`` picks the mode.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.final_norm = (
            nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.norm_first else nn.Identity()
        )

    def full_mask(self, length: int, attn_mask: Tensor | None, device: torch.device) -> Tensor | None:
        """The mask every block uses: ``attn_mask`` AND (in causal mode) the causal mask.

        Returns:
            bool, broadcastable to (B, H, L, L), True = may attend; or None (attend to all).
        """
        causal = causal_mask(length, device=device) if self.config.causal else None  # (L, L)
        return combine_masks(causal, attn_mask)

    def forward(
        self, x: Tensor, *, attn_mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Run every block.

        Args:
            x: (B, L, D) embedded inputs.
            attn_mask: bool broadcastable to (B, H, L, L); True = may attend. Usually the
                padding mask ``padding_mask(items)`` of shape (B, 1, 1, L); in causal mode
                the causal mask is added (AND) here, so do not pass it again (it is harmless
                if you do).
            return_attention: also return every layer's attention weights.

        Returns:
            (B, L, D), and if ``return_attention`` the weights of every layer stacked as
            (B, n_layers, H, L, L): ``weights[b]`` is a layers x heads grid for example b.
        """
        if x.ndim != 3 or x.shape[-1] != self.config.d_model:
            raise ValueError(
                f"TransformerEncoder expects embedded inputs (B, L, D={self.config.d_model}), "
                f"got {tuple(x.shape)}. Embed item ids first (nn.Embedding) and add positions."
            )
        mask = self.full_mask(x.shape[1], attn_mask, x.device)
        all_weights = []
        for block in self.blocks:
            x, weights = block(x, attn_mask=mask, return_attention=True)  # (B, L, D), (B, H, L, L)
            all_weights.append(weights)
        x = self.final_norm(x)
        if return_attention:
            return x, torch.stack(all_weights, dim=1)  # (B, n_layers, H, L, L)
        return x
