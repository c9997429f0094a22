"""Save and load a trained capstone: the state dict and the configs, nothing executable.

The file is a plain dictionary of tensors, numbers, strings and tuples, so it loads with
``torch.load(..., weights_only=True)``, which refuses to run arbitrary pickled code. The item
features (images, texts, text embeddings) are data, not weights: they are not in the file and
are given again when loading. Writing goes to a temporary file next to the destination, renamed
over it only when complete (``os.replace``), so an interrupted save never leaves half a file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ...data.files import atomic_path
from ..multimodal.features import ItemFeatures
from ..multimodal.item_encoder import ItemEncoder, ItemEncoderConfig
from .config import CapstoneConfig
from .metadata_encoder import MetadataEncoderConfig, MetadataFeatures, MetadataItemEncoder
from .model import CapstoneRecommender

FORMAT = "course_lib.capstone/1"  # written into every file; a file without it is refused
_ENCODERS = {"multimodal": (ItemEncoderConfig, ItemEncoder, ItemFeatures), "metadata": (MetadataEncoderConfig, MetadataItemEncoder, MetadataFeatures)}


def _encoder_kind(model: CapstoneRecommender) -> str:
    for kind, (_, cls, _) in _ENCODERS.items():
        if isinstance(model.item_encoder, cls):
            return kind
    raise TypeError(f"cannot save an item encoder of type {type(model.item_encoder).__name__}; known: ItemEncoder, MetadataItemEncoder.")


def save_capstone(model: CapstoneRecommender, path: Path | str) -> Path:
    """Write ``model``'s weights and configs to ``path`` atomically.

    Args:
        model: a :class:`CapstoneRecommender`.
        path: the destination file (its folder is created if needed); an existing file is replaced.

    Returns:
        The path written.
    """
    if not isinstance(model, CapstoneRecommender):
        raise TypeError(f"save_capstone saves a CapstoneRecommender, got {type(model).__name__}.")
    payload = {
        "format": FORMAT,
        "config": dataclasses.asdict(model.config),
        "encoder": _encoder_kind(model),
        "encoder_config": dataclasses.asdict(model.item_encoder.config),
        "state_dict": {name: value.detach().cpu() for name, value in model.state_dict().items()},
    }
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_capstone(path: Path | str, features: ItemFeatures | MetadataFeatures) -> CapstoneRecommender:
    """Rebuild a saved capstone (on the CPU, in eval mode) with ``torch.load(..., weights_only=True)``.

    Args:
        path: a file written by :func:`save_capstone`.
        features: the item features the model was trained with (:func:`shopworld_features`
            for ShopWorld, :func:`movielens_features` for MovieLens).

    Returns:
        The model, holding the saved weights.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a capstone file (expected format {FORMAT!r}); write one with save_capstone.")
    config_cls, encoder_cls, features_cls = _ENCODERS[payload["encoder"]]
    if not isinstance(features, features_cls):
        raise TypeError(f"this model's item encoder ({payload['encoder']}) needs {features_cls.__name__}, got {type(features).__name__}.")
    encoder_config = dict(payload["encoder_config"])
    if "modalities" in encoder_config:
        encoder_config["modalities"] = tuple(encoder_config["modalities"])
    model = CapstoneRecommender(CapstoneConfig(**payload["config"]), encoder_cls(config_cls(**encoder_config), features))
    model.load_state_dict(payload["state_dict"])
    return model.eval()
