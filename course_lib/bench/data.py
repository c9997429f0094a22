"""A benchmark dataset: the split, its evaluation batches, and what the models may know of its items."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from ..data.batch import Batch
from ..data.item_features import MetadataFeatures, MultimodalFeatures
from ..data.movielens import MovieLens100K, load_movielens_100k, movielens_features
from ..data.shopworld import ShopWorld, generate_shopworld, shopworld_features
from ..data.split import SequenceSplit, Stage, evaluation_batches, temporal_leave_one_out
from ..models.item_encoders import ItemEncoderConfig, TextItemEncoderConfig
from ..models.metadata_encoder import MetadataEncoderConfig
from ..models.multimodal.item_encoder import MultimodalEncoderConfig
from ..text_encoder import movielens_text_embeddings

DATASETS: tuple[str, ...] = ("ml100k", "shopworld")


@dataclass(frozen=True, eq=False)  # holds tables and tensors: compare fields explicitly
class BenchData:
    """One dataset as the benchmark uses it: one split, validation and test batches, the raw source."""

    name: str  # "ml100k" or "shopworld" (any name for a split built by hand)
    split: SequenceSplit  # temporal leave-one-out split
    valid: list[Batch]  # validation batches (input = training events)
    test: list[Batch]  # test batches (input = training events + validation item)
    world: ShopWorld | None = None  # ShopWorld: the generated shop (pictures, texts, prices)
    movielens: MovieLens100K | None = None  # ML-100K: the loaded tables (titles, years, genres)

    def batches(self, stage: Stage, max_len: int) -> list[Batch]:
        """Evaluation batches of ``stage`` with histories of length ``max_len`` (the stored ones if they fit)."""
        stored = self.valid if stage == "valid" else self.test
        if stored and stored[0].history.shape[1] == max_len:
            return stored
        return evaluation_batches(self.split, stage, max_len=max_len)

    def text_embeddings(self) -> Tensor:
        """(I, Dt) all-MiniLM-L6-v2 embeddings of the items' titles, row c = item c + 1 (ML-100K only; cached on disk)."""
        if self.movielens is None:
            raise ValueError(f"no item titles to embed for dataset {self.name!r}: text features need ML-100K (load_dataset('ml100k')).")
        return movielens_text_embeddings(self.split.item_ids)

    def features_for(self, config: ItemEncoderConfig) -> MultimodalFeatures | MetadataFeatures | Tensor:
        """The item side information an item encoder's config asks for, from this dataset."""
        if isinstance(config, TextItemEncoderConfig):
            return self.text_embeddings()
        if isinstance(config, MetadataEncoderConfig):
            if self.movielens is None:
                raise ValueError(f"the metadata item encoder needs MovieLens titles, years and genres; {self.name!r} has none.")
            return movielens_features(self.movielens.items, self.split.item_ids, self.text_embeddings())
        if isinstance(config, MultimodalEncoderConfig):
            if self.world is None:
                raise ValueError(f"the multimodal item encoder needs item pictures and texts: only ShopWorld has them, not {self.name!r}.")
            if not np.array_equal(self.split.item_ids[1:], self.world.items.index.to_numpy()):
                raise ValueError("the split's item ids do not match the ShopWorld items; split with catalogue=world.items.index.")
            return shopworld_features(self.world)
        raise TypeError(f"no item features for a {type(config).__name__}.")


def load_dataset(name: str, *, max_len: int = 50) -> BenchData:
    """Load and split a benchmark dataset (``ml100k`` or ``shopworld``), with batches of length ``max_len``."""
    if name == "ml100k":
        movielens = load_movielens_100k()
        split = temporal_leave_one_out(movielens.interactions, catalogue=movielens.items.index)
        sources = {"movielens": movielens}
    elif name == "shopworld":
        world = generate_shopworld()
        split = temporal_leave_one_out(world.interactions, catalogue=world.items.index)
        sources = {"world": world}
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    valid = evaluation_batches(split, "valid", max_len=max_len)
    test = evaluation_batches(split, "test", max_len=max_len)
    return BenchData(name, split, valid, test, **sources)
