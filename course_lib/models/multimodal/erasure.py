"""Modality erasure: what does a trained model lose when one modality is taken away?

A gated fusion reports a weight per modality, but a weight is not an effect: a modality with
a small weight can still decide the ranking, one with a large weight can be redundant. The
erasure check measures the effect directly. It copies a trained recommender, removes the chosen
modalities from its item encoder (:attr:`MultimodalEncoderConfig.erased`), and leaves every
weight as trained; evaluating the copy against the original on the same users gives the drop
per user.

    concat:  f = W [x_1; ...; 0; ...; x_M] + b                  the erased block sees zeros
    gated:   a = softmax over the kept modalities, f = W_o sum_kept a_m x_m

(The cross-modal fusion is not covered: its joint text-image vector would still carry the
erased modality.)
"""

from __future__ import annotations

import copy
import dataclasses

from torch import nn

from .item_encoder import MultimodalItemEncoder


def erase_modalities(model: nn.Module, modalities: tuple[str, ...] | str) -> nn.Module:
    """A copy of ``model`` whose multimodal item encoder no longer sees ``modalities``.

    Args:
        model: a trained recommender with an ``item_encoder`` that is a
            :class:`MultimodalItemEncoder` (e.g. the multimodal SASRec of notebook 12).
        modalities: one modality name or a tuple of them, among the encoder's modalities.

    Returns:
        A deep copy (the original is untouched) with the same weights and
        ``item_encoder.config.erased = modalities``; evaluate it like any model.
    """
    encoder = getattr(model, "item_encoder", None)
    if not isinstance(encoder, MultimodalItemEncoder):
        raise TypeError(
            "erase_modalities needs a model whose item_encoder is a MultimodalItemEncoder, "
            f"got {type(encoder).__name__} on a {type(model).__name__}."
        )
    erased = (modalities,) if isinstance(modalities, str) else tuple(modalities)
    config = dataclasses.replace(encoder.config, erased=erased)  # validated: modalities in use, not all, no cross
    copied = copy.deepcopy(model)
    copied.item_encoder.config = config
    return copied
