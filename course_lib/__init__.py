"""course_lib: the small shared library of the course "Attention for Recommendation".

Where things live, from the bottom layer up (a layer imports only layers below it; the
``import-linter`` contracts in ``pyproject.toml`` check this in ``make test``):

* ``course_lib.attention``  - scores, softmax, masks, scaled dot-product attention (pure functions)
* ``course_lib.layers``     - multi-head attention, positions, pooling, Transformer blocks
* ``course_lib.data``       - MovieLens-100K loader, ShopWorld generator, split, batches, item features
* ``course_lib.models``     - the shared recommender interface and every model behind it (nn.Modules
  and their configs only: no training, no dataset loading, no benchmark)
* ``course_lib.metrics``    - the one evaluation path (full ranking, HR@K, NDCG@K, MRR, AUC)
* ``course_lib.run_cache``  - trained runs kept under a key of everything that determines them (``fit(..., cache=True)``)
* ``course_lib.training``   - the shared training loop (optimizer, schedule, early stopping)
* ``course_lib.explain``    - attention, gradient x input and erasure importance; agreement with ground truth
* ``course_lib.recommend``, ``course_lib.checkpoints`` - top-k with explanations; save and load a model
* ``course_lib.text_encoder`` - all-MiniLM-L6-v2 loaded offline, cached item-text embeddings
* ``course_lib.exercises``  - the checkers that exercise cells call
* ``course_lib.bench``      - recipes and the benchmark on top: ``python -m course_lib.bench ml100k``
* beside them: ``viz`` (labelled heatmaps), ``toy_tasks`` (notebook 05), ``device``, ``seeding``,
  ``modes`` (``eval_mode``), ``constants`` (``PAD_ID``)

Mask convention everywhere: boolean ``attn_mask``, True = may attend.
"""

from .constants import PAD_ID
from .device import get_device
from .seeding import set_seed

__version__ = "0.1.0"

__all__ = ["PAD_ID", "get_device", "set_seed", "__version__"]
