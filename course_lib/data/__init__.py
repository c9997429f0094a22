"""Datasets, the split, and batches.

* ``movielens``  - :func:`load_movielens_100k`: fetched, verified, cached under ``data/``
* ``shopworld``  - :func:`generate_shopworld`: a synthetic shop with planted interests
* ``split``      - implicit feedback, temporal leave-one-out, padded history tensors
* ``batch``      - :class:`Batch`, what every model consumes
* ``files``      - the data folder, checksums, atomic writes
"""

from .batch import Batch
from .files import data_dir
from .movielens import MovieLens100K, MovieLensUnavailable, load_movielens_100k
from .shopworld import ShopWorld, ShopWorldConfig, generate_shopworld
from .split import (
    SequenceSplit,
    TrainingExamples,
    evaluation_batches,
    pad_sequences,
    temporal_leave_one_out,
    timestamp_tie_fraction,
    training_pairs,
    training_windows,
)

__all__ = [
    "Batch",
    "MovieLens100K",
    "MovieLensUnavailable",
    "SequenceSplit",
    "ShopWorld",
    "ShopWorldConfig",
    "TrainingExamples",
    "data_dir",
    "evaluation_batches",
    "generate_shopworld",
    "load_movielens_100k",
    "pad_sequences",
    "temporal_leave_one_out",
    "timestamp_tie_fraction",
    "training_pairs",
    "training_windows",
]
