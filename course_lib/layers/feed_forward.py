"""The position-wise feed-forward network of a Transformer block.

``FFN(x) = W_2 · act(W_1 · x + b_1) + b_2`` — Linear → activation → Linear — applied to
every position on its own, with the same weights at every position. It never mixes
positions (that is attention's job): changing the input at position j changes only the
output at position j. The hidden size is usually 4·D.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Activation = Literal["relu", "gelu"]


def make_activation(name: Activation) -> nn.Module:
    """``nn.ReLU()`` or ``nn.GELU()`` by name, with a clear error for anything else."""
    if name == "relu":
        return nn.ReLU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"activation must be 'relu' or 'gelu', got {name!r}.")


class PositionWiseFeedForward(nn.Module):
    """Linear(D → D_ff) → activation → dropout → Linear(D_ff → D), at each position.

    Args:
        d_model: D, input and output size.
        d_ff: hidden size (4·D in the original Transformer).
        dropout: dropout on the hidden activations during training.
        activation: ``"relu"`` (original Transformer) or ``"gelu"`` (BERT, GPT).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: Activation = "gelu") -> None:
        super().__init__()
        self.expand = nn.Linear(d_model, d_ff)  # W_1, b_1
        self.activation = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.contract = nn.Linear(d_ff, d_model)  # W_2, b_2

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (..., L, D). Returns: (..., L, D); position j of the output depends only on position j of x."""
        hidden = self.dropout(self.activation(self.expand(x)))  # (..., L, D_ff)
        return self.contract(hidden)  # (..., L, D)
