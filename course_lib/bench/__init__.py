"""The benchmark: train and evaluate the course's models on one dataset and print one table.

    python -m course_lib.bench ml100k                 # every model, notebook-sized settings
    python -m course_lib.bench ml100k --mode full     # converged settings (longer)
    python -m course_lib.bench ml100k --models pop mf --seeds 0 1 2
    python -m course_lib.bench.sweep base layers=2,heads=4 --epochs 30 --seeds 0 1 2

Every model is trained by the shared loop (early stopping on validation NDCG@10) and scored
by the one evaluation path: temporal leave-one-out, full ranking over all items, the input
history excluded, ties pessimistic. Test metrics are reported once, after the model was
chosen on validation. With several seeds the table gives mean ± standard deviation.

This package is the top layer of ``course_lib``: it may import every other part, and no
other part imports it (``lint-imports`` checks this).

* ``data``      - :class:`BenchData`, :func:`load_dataset`: the split, evaluation batches, item side information
* ``settings``  - :class:`Settings` (the model's config, the item encoder's config, one ``TrainConfig``,
  the training :class:`Windows`), ``Mode``
* ``run``       - :class:`BenchModel`, :func:`train` (seed -> build -> fit), :func:`train_model`, :func:`train_ensemble`
* ``recipes/``  - one module per model family: ``<family>_settings(data, mode)`` and ``build_<family>(data, settings)``
* ``registry``  - :data:`MODELS`, the rows of the table
* ``table``     - :func:`run_benchmark`, :func:`format_table`, the command line
* ``sweep``     - capstone variants on ML-100K validation, over seeds

Adding a model: write its settings and build functions in a recipe module and append a
:class:`BenchModel` to :data:`course_lib.bench.registry.MODELS`.
"""

from .data import DATASETS, BenchData, load_dataset
from .recipes.baselines import build_mf, build_popularity, mf_settings, popularity_settings
from .recipes.bert4rec import bert4rec_settings, build_bert4rec
from .recipes.capstone import build_capstone, capstone_settings
from .recipes.din import build_din, din_settings
from .recipes.multimodal import multimodal_settings
from .recipes.sequential import (
    build_gru,
    build_sasrec,
    gru_settings,
    sasrec_settings,
    text_sasrec_settings,
    time_aware_sasrec_settings,
)
from .registry import MODELS
from .run import BenchModel, BenchRun, train, train_ensemble, train_model, training_examples
from .settings import Mode, Settings, Windows
from .table import format_table, run_benchmark

__all__ = [
    "DATASETS",
    "MODELS",
    "BenchData",
    "BenchModel",
    "BenchRun",
    "Mode",
    "Settings",
    "Windows",
    "bert4rec_settings",
    "build_bert4rec",
    "build_capstone",
    "build_din",
    "build_gru",
    "build_mf",
    "build_popularity",
    "build_sasrec",
    "capstone_settings",
    "din_settings",
    "format_table",
    "gru_settings",
    "load_dataset",
    "mf_settings",
    "multimodal_settings",
    "popularity_settings",
    "run_benchmark",
    "sasrec_settings",
    "text_sasrec_settings",
    "time_aware_sasrec_settings",
    "train",
    "train_ensemble",
    "train_model",
    "training_examples",
]
