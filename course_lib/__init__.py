"""course_lib: the small shared library of the course "Attention for Recommendation".

Where things live:

* ``course_lib.attention``  - scores, softmax, masks, scaled dot-product attention
* ``course_lib.layers``     - multi-head attention, positional encodings, Transformer blocks
* ``course_lib.data``       - MovieLens-100K loader, ShopWorld generator, split and batches
* ``course_lib.models``     - the shared recommender interface and every model behind it
* ``course_lib.metrics``    - the one evaluation path (full ranking, HR@K, NDCG@K, MRR, AUC)
* ``course_lib.training``   - the shared training loop with early stopping
* ``course_lib.bench``      - ``python -m course_lib.bench ml100k`` prints the model table
* ``course_lib.toy_tasks``  - the toy sequence task of notebook 05
* ``course_lib.viz``        - labelled heatmaps and grids of heatmaps
* ``course_lib.exercises``  - the checkers that exercise cells call
* ``course_lib.device``, ``course_lib.seeding`` - ``get_device()`` and ``set_seed()``
* ``course_lib.constants``  - shared names such as ``PAD_ID``

Mask convention everywhere: boolean ``attn_mask``, True = may attend.
"""

from .constants import PAD_ID
from .device import get_device
from .seeding import set_seed

__version__ = "0.1.0"

__all__ = ["PAD_ID", "get_device", "set_seed", "__version__"]
