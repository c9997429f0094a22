"""Multimodal items: image, text, price and ID encoders, three fusions, and a SASRec over them.

* ``patch_encoder`` - :func:`patchify`, :class:`PatchEncoder` (self-attention over image patches)
* ``text_encoder``  - :class:`TextEncoder` (self-attention over text tokens, padding masked)
* ``states``        - :class:`ModalityStates` (what an encoder returns), :func:`masked_mean`
* ``fusion``        - :class:`ConcatFusion`, :class:`GatedModalityFusion`, :class:`CrossModalFusion`,
  :func:`modality_weights` (softmax over the modality axis), :func:`make_fusion`
* ``features``      - :class:`ItemFeatures`, :func:`shopworld_features`, :func:`images_to_tensor`
* ``item_encoder``  - :class:`ItemEncoder`: item ids -> fused vectors, any subset of modalities
* ``sasrec``        - :class:`MultimodalSASRec`: SASRec whose item vectors come from the item encoder
* ``bench``         - :func:`train_multimodal`, the benchmark's training function
"""

from .bench import MultimodalSettings, build_multimodal_sasrec, multimodal_settings, train_multimodal
from .features import ItemFeatures, images_to_tensor, shopworld_features
from .fusion import (
    FUSIONS,
    ConcatFusion,
    CrossModalFusion,
    FusionKind,
    FusionOutput,
    GatedModalityFusion,
    make_fusion,
    modality_weights,
)
from .item_encoder import MODALITIES, ItemEncoder, ItemEncoderConfig, ItemEncoding
from .patch_encoder import PatchEncoder, PatchEncoderConfig, patchify
from .sasrec import MultimodalSASRec, MultimodalSASRecConfig
from .states import ModalityStates, masked_mean
from .text_encoder import TextEncoder, TextEncoderConfig

__all__ = [
    "FUSIONS",
    "MODALITIES",
    "ConcatFusion",
    "CrossModalFusion",
    "FusionKind",
    "FusionOutput",
    "GatedModalityFusion",
    "ItemEncoder",
    "ItemEncoderConfig",
    "ItemEncoding",
    "ItemFeatures",
    "ModalityStates",
    "MultimodalSASRec",
    "MultimodalSASRecConfig",
    "MultimodalSettings",
    "PatchEncoder",
    "PatchEncoderConfig",
    "TextEncoder",
    "TextEncoderConfig",
    "build_multimodal_sasrec",
    "images_to_tensor",
    "make_fusion",
    "masked_mean",
    "modality_weights",
    "multimodal_settings",
    "patchify",
    "shopworld_features",
    "train_multimodal",
]
