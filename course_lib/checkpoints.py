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

from .data.files import atomic_path
from .data.item_features import MetadataFeatures, MultimodalFeatures, features_fingerprint
from .data.time_buckets import TimeBucketConfig
from .models.capstone import CapstoneConfig, CapstoneRecommender
from .models.item_encoders import make_item_encoder
from .models.metadata_encoder import MetadataEncoderConfig
from .models.multimodal.item_encoder import MultimodalEncoderConfig

FORMAT = "course_lib.capstone/1"  # written into every file; a file without it is refused
_ENCODER_CONFIGS = {"multimodal": MultimodalEncoderConfig, "metadata": MetadataEncoderConfig}


def _encoder_kind(model: CapstoneRecommender) -> str:
    for kind, config_type in _ENCODER_CONFIGS.items():
        if isinstance(model.item_encoder.config, config_type):
            return kind
    raise TypeError(
        f"cannot save an item encoder of type {type(model.item_encoder).__name__}; "
        "known: MultimodalItemEncoder, MetadataItemEncoder."
    )


def save_capstone(model: CapstoneRecommender, path: Path | str) -> Path:
    """Write ``model``'s weights and configs to ``path`` atomically.

    Args:
        model: a :class:`~course_lib.models.capstone.CapstoneRecommender`.
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
        "features": model.item_encoder.features_fingerprint,  # which item features it was trained with
        "state_dict": {name: value.detach().cpu() for name, value in model.state_dict().items()},
    }
    path = Path(path)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_capstone(path: Path | str, features: MultimodalFeatures | MetadataFeatures) -> CapstoneRecommender:
    """Rebuild a saved capstone (on the CPU, in eval mode) with ``torch.load(..., weights_only=True)``.

    Args:
        path: a file written by :func:`save_capstone`.
        features: the item features the model was trained with
            (:func:`~course_lib.data.shopworld.shopworld_features` for ShopWorld,
            :func:`~course_lib.data.movielens.movielens_features` for MovieLens).

    Returns:
        The model, holding the saved weights.

    Raises:
        ValueError: the file is not a capstone file, holds a non-finite weight (a damaged file),
            or was saved with other item features than ``features`` (another world or catalogue).
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a capstone file (expected format {FORMAT!r}); write one with save_capstone.")
    damaged = [name for name, value in payload["state_dict"].items() if value.is_floating_point() and not value.isfinite().all()]
    if damaged:
        raise ValueError(f"{path} is damaged: weight(s) {damaged[:3]} hold NaN or inf; save the model again or retrain it.")
    config = dict(payload["config"])
    if isinstance(config.get("time_gaps"), dict):
        config["time_gaps"] = TimeBucketConfig(**config["time_gaps"])
    encoder_config = dict(payload["encoder_config"])
    if "modalities" in encoder_config:
        encoder_config["modalities"] = tuple(encoder_config["modalities"])
    item_encoder = make_item_encoder(_ENCODER_CONFIGS[payload["encoder"]](**encoder_config), features)
    saved, given = payload.get("features"), features_fingerprint(features)
    if saved is not None and saved != given:  # files written before fingerprints were saved carry none
        raise ValueError(
            f"{path} was saved with other item features (fingerprint {saved}) than the ones given ({given}): load it "
            "with the features of the world or catalogue it was trained on."
        )
    model = CapstoneRecommender(CapstoneConfig(**config), item_encoder)
    model.load_state_dict(payload["state_dict"])
    return model.eval()
