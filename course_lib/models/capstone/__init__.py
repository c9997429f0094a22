"""The capstone: a multimodal, time-aware, multi-interest recommender (notebook 13).

* ``config``           - :class:`CapstoneConfig` (a time-aware SASRec config plus K interests)
* ``metadata_encoder`` - :class:`MetadataItemEncoder`: MovieLens items from ID, text embedding, genres and year
* ``model``            - :class:`CapstoneRecommender`: item encoder -> time-aware causal self-attention ->
  K + 1 interests -> the candidate's attention over them -> scores of the whole catalogue
* ``builders``         - :class:`CapstoneShape`, :func:`shopworld_capstone`, :func:`movielens_capstone`
* ``bench``            - :func:`train_capstone` (the benchmark's function), :func:`capstone_settings`
* ``persistence``      - :func:`save_capstone`, :func:`load_capstone` (``weights_only=True``)
* ``recommend``        - :func:`recommend` (top-k with the attention behind each), item catalogues
* ``explanations``     - :func:`interest_alignment`: attention checked against ShopWorld's ground truth
"""

from .bench import CapstoneSettings, build_capstone, capstone_settings, train_capstone, with_epochs
from .builders import CapstoneShape, capstone_config, movielens_capstone, shopworld_capstone
from .config import CapstoneConfig
from .explanations import InterestAlignment, history_interests, interest_alignment
from .metadata_encoder import (
    METADATA_MODALITIES,
    YEAR_EDGES,
    MetadataEncoderConfig,
    MetadataFeatures,
    MetadataItemEncoder,
    movielens_features,
    year_buckets,
)
from .model import CapstoneRecommender, UserState
from .persistence import load_capstone, save_capstone
from .recommend import (
    ItemCatalogue,
    Recommendations,
    check_user,
    movielens_catalogue,
    recommend,
    shopworld_catalogue,
    user_batch,
)

__all__ = [
    "METADATA_MODALITIES",
    "YEAR_EDGES",
    "CapstoneConfig",
    "CapstoneRecommender",
    "CapstoneSettings",
    "CapstoneShape",
    "InterestAlignment",
    "ItemCatalogue",
    "MetadataEncoderConfig",
    "MetadataFeatures",
    "MetadataItemEncoder",
    "Recommendations",
    "UserState",
    "build_capstone",
    "capstone_config",
    "capstone_settings",
    "check_user",
    "history_interests",
    "interest_alignment",
    "load_capstone",
    "movielens_capstone",
    "movielens_catalogue",
    "recommend",
    "save_capstone",
    "shopworld_capstone",
    "shopworld_catalogue",
    "train_capstone",
    "user_batch",
    "with_epochs",
    "year_buckets",
]
