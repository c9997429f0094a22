"""Attention as pure functions (scores, softmax, masks, scaled dot-product attention)
and thin modules wrapping them.

Mask convention everywhere: boolean ``attn_mask``, True = may attend.
"""

from .additive import AdditiveAttention
from .flash import HBMTraffic, flash_attention, flash_block_sizes, standard_attention_traffic
from .masks import causal_mask, combine_masks, lengths_mask, padding_mask
from .online_softmax import chunked_attention
from .scoring import additive_scores, cosine_scores, dot_product_scores
from .sdpa import scaled_dot_product_attention
from .softmax import masked_softmax, softmax

__all__ = [
    "AdditiveAttention",
    "HBMTraffic",
    "additive_scores",
    "causal_mask",
    "chunked_attention",
    "combine_masks",
    "cosine_scores",
    "dot_product_scores",
    "flash_attention",
    "flash_block_sizes",
    "lengths_mask",
    "masked_softmax",
    "padding_mask",
    "scaled_dot_product_attention",
    "softmax",
    "standard_attention_traffic",
]
