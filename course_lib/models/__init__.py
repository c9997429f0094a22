"""Recommenders behind one interface: ``loss(batch)``, ``score(batch, items)``, ``score_all(batch)``.

* ``base``        - :class:`Recommender`, the interface
* ``popularity``  - :class:`Popularity`, training counts
* ``mf``          - :class:`MatrixFactorization`, dot-product user x item embeddings
* ``din``         - :class:`DIN`, target attention (the candidate attends over the history)
* ``gru``         - :class:`GRURec`, a GRU over the history (the recurrent baseline)
* ``sasrec``      - :class:`SASRec`, causal self-attention over the history
* ``bert4rec``    - :class:`BERT4Rec`, bidirectional self-attention with cloze training
* ``time_aware_sasrec`` - :class:`TimeAwareSASRec`, SASRec plus a learned gap-since-previous-event vector
* ``multi_interest``    - :class:`MultiInterest`, K learned queries over one history
* ``sasrec_streaming``  - :class:`StreamingSASRec`, oldest-anchored positions and a key/value cache
"""

from .base import Recommender
from .bert4rec import BERT4Rec, BERT4RecConfig
from .din import DIN, DINConfig
from .gru import GRURec, GRURecConfig
from .mf import MatrixFactorization, MFConfig
from .popularity import Popularity
from .multi_interest import MultiInterest, MultiInterestConfig, assign_events
from .sasrec import SASRec, SASRecConfig, attention_by_distance
from .sasrec_streaming import StreamingSASRec
from .time_aware_sasrec import TimeAwareSASRec, TimeAwareSASRecConfig

__all__ = [
    "BERT4Rec",
    "BERT4RecConfig",
    "DIN",
    "DINConfig",
    "GRURec",
    "GRURecConfig",
    "MFConfig",
    "MatrixFactorization",
    "MultiInterest",
    "MultiInterestConfig",
    "Popularity",
    "Recommender",
    "SASRec",
    "SASRecConfig",
    "StreamingSASRec",
    "TimeAwareSASRec",
    "TimeAwareSASRecConfig",
    "assign_events",
    "attention_by_distance",
]
