"""SASRec whose item vectors come from frozen text embeddings of the items.

SASRec (:mod:`course_lib.models.sasrec`) turns item ids into vectors in one place,
``embed_items`` (inputs) and ``output_items`` (the tied output layer). Here both read

    "id":       v_i = E[i]                               SASRec unchanged (learned table)
    "text":     v_i = W t_i                              t_i = frozen text embedding (Dt,), W: (D, Dt) learned
    "id+text":  v_i = E[i] + W t_i

The text embeddings ``t`` (one row per item, e.g. all-MiniLM-L6-v2 sentence embeddings of
"Title (year). Genres: ...") are a buffer, never trained; only the projection ``W`` (and
``E`` where used) learn. An item the model never saw in training still gets a meaningful
vector ``W t_i`` from its text: the point of text features for cold start.

A ``training_catalogue`` (I,) bool (True = the item exists at training time) leaves items
out of the *training* softmax: in training mode their scores are the lowest float, so
they are neither positives nor negatives and receive no gradient at all. Evaluation
(eval mode) ranks the whole catalogue. See :mod:`course_lib.data.cold_start`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from ..seeding import set_seed
from .sasrec import SASRec, SASRecConfig

if TYPE_CHECKING:  # imported lazily at run time, so course_lib.bench may register this model
    from ..bench import BenchData, BenchRun, Mode
    from ..training import TrainConfig

ItemFeatures = Literal["id", "text", "id+text"]
FEATURES: tuple[str, ...] = ("id", "text", "id+text")


@dataclass(frozen=True)
class TextSASRecConfig(SASRecConfig):
    item_features: ItemFeatures = "text"  # what an item vector is built from: "id", "text" or "id+text"
    text_dim: int = 384  # Dt, size of one frozen text embedding (384 for all-MiniLM-L6-v2)


class TextSASRec(SASRec):
    """SASRec with item vectors from frozen text embeddings (alone or added to ID embeddings).

    Args:
        config: a :class:`TextSASRecConfig`.
        text_embeddings: (I, Dt) frozen text embedding of each item; row c is item id c + 1.
        training_catalogue: optional (I,) bool, True = the item may be scored in the
            training softmax (default: every item). Column c is item id c + 1.
    """

    def __init__(
        self, config: TextSASRecConfig, text_embeddings: Tensor, *, training_catalogue: Tensor | None = None
    ) -> None:
        if config.item_features not in FEATURES:
            raise ValueError(f"item_features must be one of {FEATURES}, got {config.item_features!r}.")
        expected = (config.num_items, config.text_dim)
        if not isinstance(text_embeddings, Tensor) or tuple(text_embeddings.shape) != expected:
            shape = tuple(text_embeddings.shape) if isinstance(text_embeddings, Tensor) else type(text_embeddings).__name__
            raise ValueError(f"text_embeddings must be (I, Dt) = {expected} (row c = item c + 1), got {shape}.")
        super().__init__(config)
        self.config: TextSASRecConfig = config
        uses_id, uses_text = config.item_features in ("id", "id+text"), config.item_features in ("text", "id+text")
        if not uses_id:
            self.item_embedding = None  # no ID table: every item vector comes from its text
        padded = torch.cat([text_embeddings.new_zeros(1, config.text_dim), text_embeddings.detach()])  # (I+1, Dt)
        self.register_buffer("text_features", padded.float(), persistent=False)  # frozen; row PAD_ID = 0
        self.text_projection = nn.Linear(config.text_dim, config.d_model, bias=False) if uses_text else None
        catalogue = torch.ones(config.num_items, dtype=torch.bool) if training_catalogue is None else training_catalogue
        if catalogue.shape != (config.num_items,) or catalogue.dtype != torch.bool:
            raise ValueError(
                f"training_catalogue must be a bool (I,) = ({config.num_items},) tensor, "
                f"got {tuple(catalogue.shape)} {catalogue.dtype}."
            )
        if not catalogue.any():
            raise ValueError("training_catalogue holds no item; at least one item must be trainable.")
        self.register_buffer("training_catalogue", catalogue.clone(), persistent=False)  # (I,)

    def embed_items(self, items: Tensor) -> Tensor:
        """Item vectors (...) -> (..., D): ``E[i]``, ``W t_i`` or their sum; ``PAD_ID`` gives zeros."""
        vectors = 0
        if self.item_embedding is not None:
            vectors = self.item_embedding(items)  # (..., D)
        if self.text_projection is not None:
            vectors = vectors + self.text_projection(self.text_features[items])  # (..., Dt) -> (..., D)
        return vectors

    def output_items(self) -> Tensor:
        """(I, D) output vectors of items 1..I, the same vectors as the inputs (tied)."""
        items = torch.arange(1, self.num_items + 1, device=self.text_features.device)
        return self.embed_items(items)

    def item_scores(self, hidden: Tensor) -> Tensor:
        """Scores (..., D) -> (..., I); in training mode, items outside the training catalogue score lowest."""
        scores = super().item_scores(hidden)  # (..., I)
        if self.training and not bool(self.training_catalogue.all()):
            scores = scores.masked_fill(~self.training_catalogue, torch.finfo(scores.dtype).min)
        return scores


def ml100k_text_embeddings(split_item_ids) -> Tensor:
    """(I, Dt) cached all-MiniLM-L6-v2 embeddings of ML-100K items, row c = course item c + 1.

    Args:
        split_item_ids: ``split.item_ids`` (I + 1,) original ids; entry ``PAD_ID`` is unused.
    """
    from ..data.movielens import load_movielens_100k
    from ..text_encoder import item_text_embeddings, movielens_item_texts

    movielens = load_movielens_100k(verbose=False)
    return item_text_embeddings(movielens_item_texts(movielens.items, split_item_ids[1:]))


def train_text_sasrec(
    data: BenchData,
    mode: Mode,
    seed: int,
    device: torch.device,
    *,
    features: ItemFeatures = "text",
    text_embeddings: Tensor | None = None,
    training_catalogue: Tensor | None = None,
    config: TrainConfig | None = None,
) -> BenchRun:
    """Train a :class:`TextSASRec` with SASRec's benchmark settings (``sasrec_settings(mode)``).

    Args:
        data: the benchmark data (``ml100k``, or any split if ``text_embeddings`` is given).
        mode: ``"notebook"`` or ``"full"``.
        seed: seeds the model initialisation and the training loop.
        device: where to train.
        features: ``"id"``, ``"text"`` or ``"id+text"``.
        text_embeddings: (I, Dt) item text embeddings; default: all-MiniLM-L6-v2 of the
            ML-100K titles (cached under ``data/cache``).
        training_catalogue: (I,) bool, items allowed in the training softmax (cold start).
        config: training settings replacing the mode's (e.g. a shorter time budget).

    Returns:
        A :class:`~course_lib.bench.BenchRun` (the model holds its best-validation weights).
    """
    from ..bench import fit_on_windows, sasrec_settings

    s = sasrec_settings(mode)
    if text_embeddings is None:
        if data.name != "ml100k":
            raise ValueError(f"no default item texts for dataset {data.name!r}; pass text_embeddings (I, Dt).")
        text_embeddings = ml100k_text_embeddings(data.split.item_ids)
    set_seed(seed)
    model = TextSASRec(
        TextSASRecConfig(
            data.split.num_items, max_len=s.max_len, d_model=s.d_model, n_heads=s.n_heads, n_layers=s.n_layers,
            dropout=s.dropout, item_features=features, text_dim=text_embeddings.shape[1],
        ),
        text_embeddings,
        training_catalogue=training_catalogue,
    )
    return fit_on_windows(
        model, data, s.config if config is None else config, seed, device,
        max_len=s.max_len, stride=s.stride, warmup_epochs=s.warmup_epochs,
    )


def train_text_only_sasrec(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """Benchmark entry: SASRec with item vectors = projected text embeddings only."""
    return train_text_sasrec(data, mode, seed, device, features="text")


def train_id_text_sasrec(data: BenchData, mode: Mode, seed: int, device: torch.device) -> BenchRun:
    """Benchmark entry: SASRec with item vectors = ID embedding + projected text embedding."""
    return train_text_sasrec(data, mode, seed, device, features="id+text")
