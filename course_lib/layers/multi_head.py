"""Multi-head attention: H scaled dot-product attentions side by side, as one module.

The module is a thin wrapper around the pure function
:func:`course_lib.attention.scaled_dot_product_attention`:

1. project the inputs to queries, keys and values      (B, L, D)
2. split the last dimension into H heads of size Dh    (B, H, L, Dh)
3. attend in every head at once                        (B, H, Lq, Dh), weights (B, H, Lq, Lk)
4. merge the heads back and mix them with ``out_proj`` (B, Lq, D)

Self-attention passes only ``query``; cross-attention also passes ``key`` (and
``value``, which defaults to ``key``). Mask convention: boolean ``attn_mask``,
True = may attend, broadcastable to (B, H, Lq, Lk).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..attention import scaled_dot_product_attention


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """Cut the feature dimension into ``n_heads`` equal slices, one per head.

    Args:
        x: (B, L, D) with D divisible by ``n_heads``.
        n_heads: H.

    Returns:
        (B, H, L, Dh) with Dh = D / H; head h holds features ``h*Dh .. (h+1)*Dh - 1``.
    """
    batch, length, d_model = x.shape
    if d_model % n_heads:
        raise ValueError(f"split_heads: D = {d_model} is not divisible by H = {n_heads}.")
    x = x.view(batch, length, n_heads, d_model // n_heads)  # (B, L, H, Dh)
    return x.transpose(1, 2)  # (B, H, L, Dh)


def merge_heads(x: Tensor) -> Tensor:
    """Undo :func:`split_heads`: concatenate the heads' features again.

    Args:
        x: (B, H, L, Dh).

    Returns:
        (B, L, H * Dh), heads side by side in order.
    """
    batch, n_heads, length, d_head = x.shape
    x = x.transpose(1, 2)  # (B, L, H, Dh)
    return x.reshape(batch, length, n_heads * d_head)  # (B, L, D)


def _check_input(x: Tensor, name: str, features: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim != 3 or x.shape[-1] != features:
        raise ValueError(
            f"{name} must have shape (B, L, {features}), got {tuple(x.shape)}. "
            "Add a batch dimension with x.unsqueeze(0) if you have a single sequence."
        )


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (self- or cross-attention).

    Args:
        d_model: D, the size of the query vectors and of the output.
        n_heads: H; D must be divisible by H, each head works in Dh = D / H dimensions.
        dropout: probability of dropping an attention weight during training.
        bias: whether the four projections have a bias.
        kv_dim: size of the key/value vectors when they differ from D (cross-attention
            from another modality); default D.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        *,
        bias: bool = True,
        kv_dim: int | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"d_model (D = {d_model}) must be divisible by n_heads (H = {n_heads}): "
                "every head gets D / H features."
            )
        kv_dim = d_model if kv_dim is None else kv_dim
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.kv_dim = kv_dim
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)  # all heads' W_Q side by side
        self.k_proj = nn.Linear(kv_dim, d_model, bias=bias)
        self.v_proj = nn.Linear(kv_dim, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W_O mixes the heads

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, L, D) -> (B, H, L, Dh); see :func:`split_heads`."""
        return split_heads(x, self.n_heads)

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Attention inside every head on already projected, split tensors.

        Kept separate so that a key/value cache can concatenate earlier keys and values
        (B, H, L_past, Dh) before attending.

        Args:
            q: (B, H, Lq, Dh). k, v: (B, H, Lk, Dh).
            attn_mask: bool broadcastable to (B, H, Lq, Lk); True = may attend.

        Returns:
            merged output (B, Lq, D) after ``out_proj``, and weights (B, H, Lq, Lk).
        """
        dropout_p = self.dropout if self.training else 0.0
        heads, weights = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p)  # (B, H, Lq, Dh)
        return self.out_proj(merge_heads(heads)), weights  # (B, Lq, D), (B, H, Lq, Lk)

    def forward(
        self,
        *,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        attn_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from every query position over the key positions, in every head.

        Args:
            query: (B, Lq, D).
            key: (B, Lk, kv_dim); default ``query`` (self-attention).
            value: (B, Lk, kv_dim); default ``key``.
            attn_mask: bool, broadcastable to (B, H, Lq, Lk); True = may attend.
                Typical shapes: (Lq, Lk) causal, (B, 1, 1, Lk) padding, (B, 1, Lq, Lk) both.
                A query row with no allowed key gets zero attention (its output is the
                output projection's bias), never NaN.
            return_attention: also return the per-head weights.

        Returns:
            output (B, Lq, D), and if ``return_attention`` the weights (B, H, Lq, Lk)
            (after dropout, so ``output`` is exactly what they produce). Nothing is stored.
        """
        key = query if key is None else key
        value = key if value is None else value
        _check_input(query, "query", self.d_model)
        _check_input(key, "key", self.kv_dim)
        _check_input(value, "value", self.kv_dim)
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(
                f"key and value must have the same (B, Lk), got {tuple(key.shape)} and {tuple(value.shape)}."
            )
        if attn_mask is not None and attn_mask.ndim == 3:
            raise ValueError(
                f"attn_mask of shape {tuple(attn_mask.shape)} is ambiguous: a 3-D mask would "
                "broadcast its first dimension against the heads. Use (Lq, Lk), "
                "(B, 1, Lq, Lk) (e.g. mask.unsqueeze(1)) or (B, H, Lq, Lk)."
            )
        q = self.split_heads(self.q_proj(query))  # (B, H, Lq, Dh)
        k = self.split_heads(self.k_proj(key))  # (B, H, Lk, Dh)
        v = self.split_heads(self.v_proj(value))  # (B, H, Lk, Dh)
        output, weights = self.attend(q, k, v, attn_mask)  # (B, Lq, D), (B, H, Lq, Lk)
        return (output, weights) if return_attention else output

    def extra_repr(self) -> str:
        extra = f", kv_dim={self.kv_dim}" if self.kv_dim != self.d_model else ""
        return f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}, dropout={self.dropout}{extra}"


@torch.no_grad()
def copy_from_torch_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy the weights of a ``torch.nn.MultiheadAttention`` into ``ours`` (same D, H).

    torch keeps W_Q, W_K, W_V stacked in one ``in_proj_weight`` (3D, D) when the key
    and value sizes equal D, and in separate ``q/k/v_proj_weight`` otherwise.

    Returns:
        ``ours``, for chaining.
    """
    if (theirs.embed_dim, theirs.num_heads) != (ours.d_model, ours.n_heads):
        raise ValueError(
            f"shapes differ: torch has D={theirs.embed_dim}, H={theirs.num_heads}; "
            f"ours has D={ours.d_model}, H={ours.n_heads}."
        )
    if (theirs.in_proj_bias is None) != (ours.q_proj.bias is None):
        raise ValueError("one module has biases and the other has not; build ours with bias=... to match.")
    if theirs.in_proj_weight is not None:
        w_q, w_k, w_v = theirs.in_proj_weight.chunk(3, dim=0)  # 3 x (D, D)
    else:
        w_q, w_k, w_v = theirs.q_proj_weight, theirs.k_proj_weight, theirs.v_proj_weight
    for proj, weight in ((ours.q_proj, w_q), (ours.k_proj, w_k), (ours.v_proj, w_v)):
        proj.weight.copy_(weight)
    if theirs.in_proj_bias is not None:
        for proj, bias in zip((ours.q_proj, ours.k_proj, ours.v_proj), theirs.in_proj_bias.chunk(3)):
            proj.bias.copy_(bias)
    ours.out_proj.weight.copy_(theirs.out_proj.weight)
    if theirs.out_proj.bias is not None:
        ours.out_proj.bias.copy_(theirs.out_proj.bias)
    return ours
