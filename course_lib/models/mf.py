"""Dot-product matrix factorization: score(u, i) = <user vector, item vector>.

Trained with a full softmax over the catalogue (cross-entropy of the true next item
against every item), which is exact and cheap for ML-100K's 1,682 items. Users with no
training data keep their random initial vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..constants import PAD_ID
from ..data.batch import Batch
from .base import Recommender, check_candidates, check_fields, check_targets, init_table


@dataclass(frozen=True)
class MFConfig:
    num_users: int  # U; users are indexed 0..U-1
    num_items: int  # I; items are 1..I, PAD_ID = 0
    d_model: int = 64  # D, the embedding size of users and items
    init_std: float = 0.1  # standard deviation of the initial embeddings

    def __post_init__(self) -> None:
        check_fields(self, sizes=("num_users", "num_items", "d_model"), scales=("init_std",))


class MatrixFactorization(Recommender):
    """User and item embeddings; the score is their dot product."""

    def __init__(self, config: MFConfig) -> None:
        super().__init__(config.num_items)
        self.config = config
        self.user_embedding = nn.Embedding(config.num_users, config.d_model)  # (U, D)
        self.item_embedding = nn.Embedding(config.num_items + 1, config.d_model, padding_idx=PAD_ID)  # (I + 1, D)
        init_table(self.user_embedding, config.init_std)
        init_table(self.item_embedding, config.init_std)

    def user_vectors(self, users: Tensor) -> Tensor:
        """(B, D) the vectors of user indices ``users`` (B,), which must lie in 0..U-1."""
        if users.numel() and (int(users.min()) < 0 or int(users.max()) >= self.config.num_users):
            raise ValueError(
                f"user indices must lie in 0..{self.config.num_users - 1} (the users MF was built for), "
                f"got {int(users.min())}..{int(users.max())}."
            )
        return self.user_embedding(users)

    def score_all(self, batch: Batch) -> Tensor:
        users = self.user_vectors(batch.users)  # (B, D)
        return users @ self.item_embedding.weight[1:].T  # (B, I)

    def score(self, batch: Batch, items: Tensor) -> Tensor:
        check_candidates(items, self.num_items, len(batch))
        users = self.user_vectors(batch.users)  # (B, D)
        return torch.einsum("bd,bnd->bn", users, self.item_embedding(items))  # (B, N)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """Full-softmax cross-entropy of each positive item given the user.

        Positives are ``batch.targets`` or, for sequence windows, every non-padding entry
        of ``batch.seq_targets`` (the history itself is not used by MF).
        """
        if batch.seq_targets is not None:
            keep = batch.seq_targets != PAD_ID  # (B, L)
            users = batch.users[:, None].expand_as(batch.seq_targets)[keep]  # (P,)
            positives = batch.seq_targets[keep]  # (P,)
        elif batch.targets is not None:
            users, positives = batch.users, batch.targets
        else:
            raise ValueError("MF.loss needs batch.targets or batch.seq_targets.")
        check_targets(positives, self.num_items, "MatrixFactorization")
        logits = self.user_vectors(users) @ self.item_embedding.weight[1:].T  # (P, I)
        return F.cross_entropy(logits, positives - 1)
