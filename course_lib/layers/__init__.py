"""Transformer layers built on :mod:`course_lib.attention`, one concept per file.

* ``multi_head``   - :class:`MultiHeadAttention` (self and cross), ``split_heads``, ``merge_heads``
* ``positional``   - sinusoidal and learned positional encodings; slots counted from the newest or the oldest event
* ``pooling``      - :func:`masked_mean`, :func:`prefix_attention_pool` (K queries over every prefix)
* ``feed_forward`` - the position-wise feed-forward network (Linear → activation → Linear)
* ``transformer``  - :class:`TransformerConfig`, :class:`TransformerBlock` (pre-/post-LN) and
  :class:`TransformerEncoder` (causal GPT-style or bidirectional BERT-style)

Mask convention everywhere: boolean ``attn_mask``, True = may attend, broadcastable to
(B, H, Lq, Lk). Modules return attention weights when asked and never store them.
"""

from .feed_forward import PositionWiseFeedForward
from .multi_head import MultiHeadAttention, copy_from_torch_mha, merge_heads, split_heads
from .pooling import masked_mean, prefix_attention_pool
from .positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    positions_from_newest,
    positions_from_oldest,
    sinusoidal_positions,
)
from .transformer import TransformerBlock, TransformerConfig, TransformerEncoder

__all__ = [
    "LearnedPositionalEncoding",
    "MultiHeadAttention",
    "PositionWiseFeedForward",
    "SinusoidalPositionalEncoding",
    "TransformerBlock",
    "TransformerConfig",
    "TransformerEncoder",
    "copy_from_torch_mha",
    "masked_mean",
    "merge_heads",
    "positions_from_newest",
    "positions_from_oldest",
    "prefix_attention_pool",
    "sinusoidal_positions",
    "split_heads",
]
