"""Recommenders behind one interface: ``loss(batch)``, ``score(batch, items)``, ``score_all(batch)``.

Models are ``nn.Module`` s with typed configs: they never train themselves, load a dataset or
know the benchmark (``lint-imports`` checks this). Each file holds one idea:

* ``base``             - :class:`Recommender` (the interface), :class:`AttentionMaps` (``model.attention(batch, items)``)
* ``popularity``       - :class:`Popularity`, training counts
* ``mf``               - :class:`MatrixFactorization`, dot-product user x item embeddings
* ``din``              - :class:`DIN`, target attention (the candidate attends over the history)
* ``gru``              - :class:`GRURec`, a GRU over the history (the recurrent baseline)
* ``item_encoders``    - where item vectors come from: :class:`IdEmbedding`, :class:`TextItemEncoder`,
  :func:`make_item_encoder` (the multimodal and metadata encoders live in ``multimodal/`` and ``metadata_encoder``)
* ``sequence_encoder`` - :class:`SequenceEncoder`: item vectors + positions (+ time gaps) -> causal Transformer
* ``sasrec``           - :class:`SASRec` (and its time-aware, text, multimodal and streaming variants, by composition)
* ``sasrec_streaming`` - a key/value cache: :func:`extend`, :func:`step`
* ``bert4rec``         - :class:`BERT4Rec`, bidirectional self-attention with cloze training
* ``multi_interest``   - :class:`MultiInterest`, K learned queries over one history
* ``capstone``         - :class:`CapstoneRecommender`: item encoder -> time-aware sequence encoder -> K + 1 interests
  -> the candidate's attention over them
* ``generative/``      - items as tokens (notebook 16): semantic IDs, a trie of valid codes, constrained beam search,
  :class:`~course_lib.models.generative.GenerativeRecommender` (a causal decoder over item codes)
* ``lm_ranker/``       - a causal language model as a ranker (notebook 17): prompts, candidate log-likelihoods,
  constrained decoding over title tokens, LoRA (training it lives in ``course_lib.bench.recipes.lm_ranker``)
* ``ensemble``, ``candidate_subset`` - wrappers: the mean of several models; ranking a subset of the catalogue
"""

from .base import AttentionMaps, Recommender
from .bert4rec import BERT4Rec, BERT4RecConfig
from .capstone import CapstoneConfig, CapstoneRecommender
from .din import DIN, DINConfig
from .gru import GRURec, GRURecConfig
from .item_encoders import IdEmbedding, TextItemEncoder, TextItemEncoderConfig, make_item_encoder
from .metadata_encoder import MetadataEncoderConfig, MetadataItemEncoder
from .mf import MatrixFactorization, MFConfig
from .multi_interest import MultiInterest, MultiInterestConfig, assign_events
from .multimodal import MultimodalEncoderConfig, MultimodalItemEncoder
from .popularity import Popularity
from .sasrec import SASRec, SASRecConfig, StreamingSASRec, attention_by_distance

__all__ = [
    "AttentionMaps",
    "BERT4Rec",
    "BERT4RecConfig",
    "CapstoneConfig",
    "CapstoneRecommender",
    "DIN",
    "DINConfig",
    "GRURec",
    "GRURecConfig",
    "IdEmbedding",
    "MFConfig",
    "MatrixFactorization",
    "MetadataEncoderConfig",
    "MetadataItemEncoder",
    "MultiInterest",
    "MultiInterestConfig",
    "MultimodalEncoderConfig",
    "MultimodalItemEncoder",
    "Popularity",
    "Recommender",
    "SASRec",
    "SASRecConfig",
    "StreamingSASRec",
    "TextItemEncoder",
    "TextItemEncoderConfig",
    "assign_events",
    "attention_by_distance",
    "make_item_encoder",
]
