"""Recommenders behind one interface: ``loss(batch)``, ``score(batch, items)``, ``score_all(batch)``.

* ``base``        - :class:`Recommender`, the interface
* ``popularity``  - :class:`Popularity`, training counts
* ``mf``          - :class:`MatrixFactorization`, dot-product user x item embeddings
"""

from .base import Recommender
from .mf import MatrixFactorization, MFConfig
from .popularity import Popularity

__all__ = ["MFConfig", "MatrixFactorization", "Popularity", "Recommender"]
