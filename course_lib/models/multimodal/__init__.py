"""Multimodal items: image, text, price and ID encoders, and three ways to fuse them.

* ``patch_encoder`` - :func:`patchify`, :class:`PatchEncoder` (self-attention over image patches)
* ``text_encoder``  - :class:`TextEncoder` (self-attention over text tokens, padding masked)
* ``states``        - :class:`ModalityStates` (what a modality encoder returns)
* ``fusion``        - :class:`ConcatFusion`, :class:`GatedModalityFusion`, :class:`CrossModalFusion`,
  :func:`modality_weights` (softmax over the modality axis), :func:`make_fusion`
* ``item_encoder``  - :class:`MultimodalItemEncoder`: the catalogue -> fused vectors, any subset of modalities
* ``erasure``       - :func:`erase_modalities`: a trained model's copy with chosen modalities removed

A multimodal SASRec is SASRec with this item encoder:
``SASRec(config, item_encoder=MultimodalItemEncoder(...))`` (see :mod:`course_lib.models.sasrec`).
"""

from .erasure import erase_modalities
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
from .item_encoder import MODALITIES, ItemEncoding, MultimodalEncoderConfig, MultimodalItemEncoder
from .patch_encoder import PatchEncoder, PatchEncoderConfig, patchify
from .states import ModalityStates
from .text_encoder import TextEncoder, TextEncoderConfig

__all__ = [
    "FUSIONS",
    "MODALITIES",
    "ConcatFusion",
    "CrossModalFusion",
    "FusionKind",
    "FusionOutput",
    "GatedModalityFusion",
    "ItemEncoding",
    "ModalityStates",
    "MultimodalEncoderConfig",
    "MultimodalItemEncoder",
    "PatchEncoder",
    "PatchEncoderConfig",
    "TextEncoder",
    "TextEncoderConfig",
    "erase_modalities",
    "make_fusion",
    "modality_weights",
    "patchify",
]
