"""Additive (Bahdanau) attention as a module wrapping :func:`additive_scores`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .scoring import additive_scores
from .softmax import masked_softmax


class AdditiveAttention(nn.Module):
    """Attention whose scores come from a small network: ``w_v . tanh(q W_q + k W_k)``.

    Args:
        query_dim: Dq, the size of each query vector.
        key_dim: Dk, the size of each key vector.
        hidden_dim: A, the size of the hidden layer that scores each (query, key) pair.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.w_q = nn.Parameter(torch.empty(query_dim, hidden_dim))  # (Dq, A)
        self.w_k = nn.Parameter(torch.empty(key_dim, hidden_dim))  # (Dk, A)
        self.w_v = nn.Parameter(torch.empty(hidden_dim))  # (A,)
        nn.init.xavier_uniform_(self.w_q)
        nn.init.xavier_uniform_(self.w_k)
        nn.init.uniform_(self.w_v, -hidden_dim**-0.5, hidden_dim**-0.5)

    def forward(
        self,
        *,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from each query over the keys and pool the values.

        Args:
            query: (..., Lq, Dq).
            key: (..., Lk, Dk).
            value: (..., Lk, Dv).
            attn_mask: bool, broadcastable to (..., Lq, Lk); True = may attend.
            return_attention: also return the weights (..., Lq, Lk).

        Returns:
            output (..., Lq, Dv), and the weights if ``return_attention``.
        """
        scores = additive_scores(query, key, self.w_q, self.w_k, self.w_v)  # (..., Lq, Lk)
        weights = masked_softmax(scores, attn_mask)  # (..., Lq, Lk)
        output = weights @ value  # (..., Lq, Dv)
        return (output, weights) if return_attention else output

