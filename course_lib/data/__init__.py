"""Datasets, the split, and batches.

* ``movielens``  - :func:`load_movielens_100k`: fetched, verified, cached under ``data/``
* ``shopworld``  - :func:`generate_shopworld`: a synthetic shop with planted interests
* ``split``      - implicit feedback, temporal leave-one-out, padded history tensors
* ``batch``      - :class:`Batch`, what every model consumes
* ``item_features`` - :class:`MultimodalFeatures`, :class:`MetadataFeatures`: what models know of items besides ids
* ``time_buckets``  - log-scale buckets of the time gaps between events
* ``cold_start``, ``noise`` - held-out items, noisy histories
* ``files``      - the data folder, checksums, atomic writes
"""

from .batch import Batch
from .files import data_dir
from .item_features import MetadataFeatures, MultimodalFeatures
from .movielens import MovieLens100K, MovieLensUnavailable, load_movielens_100k, movielens_features
from .shopworld import ShopWorld, ShopWorldConfig, generate_shopworld, low_stickiness_config, shopworld_features
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
    "MetadataFeatures",
    "MovieLens100K",
    "MovieLensUnavailable",
    "MultimodalFeatures",
    "SequenceSplit",
    "ShopWorld",
    "ShopWorldConfig",
    "TrainingExamples",
    "data_dir",
    "evaluation_batches",
    "generate_shopworld",
    "load_movielens_100k",
    "low_stickiness_config",
    "movielens_features",
    "pad_sequences",
    "shopworld_features",
    "temporal_leave_one_out",
    "timestamp_tie_fraction",
    "training_pairs",
    "training_windows",
]
