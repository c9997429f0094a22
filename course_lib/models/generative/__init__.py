"""Items as tokens (notebook 16): semantic IDs, a trie of valid codes, beam search and the code decoder.

* ``semantic_ids`` - residual k-means: :func:`fit_residual_quantizer`, :func:`quantize_level`,
  :func:`add_disambiguation`, :func:`code_stats`
* ``trie``         - :class:`CodeTrie`: the valid codes and the next-token mask
* ``beam_search``  - :func:`beam_search` constrained by the trie, :func:`exhaustive_scores` (its reference)
* ``decoder``      - :class:`GenerativeRecommender`: a causal decoder over item codes behind the recommender interface
"""

from .beam_search import beam_search, exhaustive_scores
from .decoder import BOS, GenerativeConfig, GenerativeRecommender, GenerativeShelf
from .semantic_ids import (
    CodeStats,
    ResidualQuantizer,
    add_disambiguation,
    code_stats,
    fit_residual_quantizer,
    kmeans,
    nearest_centroid,
    quantize_level,
)
from .trie import CodeTrie, check_codes

__all__ = [
    "BOS",
    "CodeStats",
    "CodeTrie",
    "GenerativeConfig",
    "GenerativeRecommender",
    "GenerativeShelf",
    "ResidualQuantizer",
    "add_disambiguation",
    "beam_search",
    "check_codes",
    "code_stats",
    "exhaustive_scores",
    "fit_residual_quantizer",
    "kmeans",
    "nearest_centroid",
    "quantize_level",
]
