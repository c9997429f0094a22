"""Three ways to fuse M modality vectors of an item into one, behind one interface.

Every fusion is called as ``fusion(vectors, text=..., image=...)`` with ``vectors``
(B, M, D), the pooled vector of each modality, and returns a :class:`FusionOutput`
(concat and gated also take ``keep`` (M,) bool for an erasure check, see :mod:`.erasure`):

* :class:`ConcatFusion` - concatenate and project: ``f = W [x_1; ...; x_M] + b``.
* :class:`GatedModalityFusion` - per-item attention over the *modality* axis:
  ``s_m = v^T tanh(W x_m + u_m)``, ``a = softmax_m(s)`` (M weights that sum to 1),
  ``f = W_o sum_m a_m x_m``. The softmax runs over the M modalities; taken over an axis of
  size 1 (scores shaped (B, M, 1), ``softmax(dim=-1)``) it returns 1 for every modality,
  whatever the scores: no gating at all.
* :class:`CrossModalFusion` - the text tokens attend to the image patches
  (query = token, key = value = patch): each word gathers the image regions it goes with;
  the attended tokens are pooled into one joint text-image vector, concatenated with the
  modality vectors and projected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ...layers import MultiHeadAttention, masked_mean
from .states import ModalityStates

FusionKind = Literal["concat", "gated", "cross"]
FUSIONS: tuple[FusionKind, ...] = ("concat", "gated", "cross")


@dataclass(frozen=True)
class FusionOutput:
    vector: Tensor  # (B, D) the fused item vector
    modality_weights: Tensor | None = None  # (B, M) gated fusion: weight of each modality, rows sum to 1
    cross_weights: Tensor | None = None  # (B, H, T, P) cross-modal fusion: token -> patch weights


def _check_vectors(vectors: Tensor, num_modalities: int, d_model: int) -> None:
    if not isinstance(vectors, Tensor) or vectors.ndim != 3 or vectors.shape[1:] != (num_modalities, d_model):
        shape = tuple(vectors.shape) if isinstance(vectors, Tensor) else type(vectors).__name__
        raise ValueError(
            f"vectors must be the pooled modality vectors stacked as (B, M={num_modalities}, D={d_model}), got {shape}."
        )


def _check_keep(keep: Tensor | None, num_modalities: int) -> None:
    if keep is None:
        return
    if not isinstance(keep, Tensor) or keep.dtype != torch.bool or keep.shape != (num_modalities,):
        what = f"{tuple(keep.shape)} {keep.dtype}" if isinstance(keep, Tensor) else type(keep).__name__
        raise ValueError(f"keep must be a bool tensor (M={num_modalities},), True = keep the modality; got {what}.")
    if not bool(keep.any()):
        raise ValueError("keep removes every modality; at least one must stay.")


def modality_weights(scores: Tensor) -> Tensor:
    """Softmax over the modality axis: one weight per modality, summing to 1 per item.

    Args:
        scores: (B, M) one score per item and modality.

    Returns:
        (B, M) weights; every row sums to 1.
    """
    if scores.ndim != 2:
        hint = (
            " A trailing axis of size 1 is the classic bug: softmax over it is 1 for every modality. "
            "Squeeze it (scores.squeeze(-1)) so the softmax runs over the M modalities."
            if scores.ndim == 3 and scores.shape[-1] == 1 else ""
        )
        raise ValueError(f"scores must be (B, M), one per modality, got {tuple(scores.shape)}.{hint}")
    if scores.shape[1] < 1:
        raise ValueError("scores has no modality (M = 0).")
    return torch.softmax(scores, dim=-1)  # over M


class ConcatFusion(nn.Module):
    """``f = W [x_1; ...; x_M] + b``: every modality gets its own block of W.

    Args:
        num_modalities: M.
        d_model: D.
    """

    def __init__(self, num_modalities: int, d_model: int) -> None:
        super().__init__()
        self.num_modalities, self.d_model = num_modalities, d_model
        self.project = nn.Linear(num_modalities * d_model, d_model)

    def forward(
        self, vectors: Tensor, *, text: ModalityStates | None = None, image: ModalityStates | None = None,
        keep: Tensor | None = None,
    ) -> FusionOutput:
        """Args: vectors (B, M, D); text, image unused; keep (M,) bool, False = erase that modality
        (its vector is replaced by zeros). Returns: vector (B, D)."""
        _check_vectors(vectors, self.num_modalities, self.d_model)
        _check_keep(keep, self.num_modalities)
        if keep is not None:
            vectors = vectors * keep[:, None].to(vectors.dtype)  # (B, M, D), erased rows zero
        return FusionOutput(self.project(vectors.flatten(1)))  # (B, M·D) -> (B, D)


class GatedModalityFusion(nn.Module):
    """Per-item softmax weights over the modalities, then a weighted sum.

    Args:
        num_modalities: M.
        d_model: D.
        d_gate: hidden size of the scoring network.
    """

    def __init__(self, num_modalities: int, d_model: int, d_gate: int | None = None) -> None:
        super().__init__()
        self.num_modalities, self.d_model = num_modalities, d_model
        d_gate = d_gate or d_model
        self.gate_in = nn.Linear(d_model, d_gate)  # W
        self.modality_bias = nn.Parameter(torch.zeros(num_modalities, d_gate))  # u_m: which modality this is
        self.gate_out = nn.Linear(d_gate, 1, bias=False)  # v
        self.project = nn.Linear(d_model, d_model)  # W_o

    def scores(self, vectors: Tensor) -> Tensor:
        """(B, M, D) -> (B, M): ``s_m = v^T tanh(W x_m + u_m)``."""
        hidden = torch.tanh(self.gate_in(vectors) + self.modality_bias)  # (B, M, d_gate)
        return self.gate_out(hidden).squeeze(-1)  # (B, M, 1) -> (B, M)

    def forward(
        self, vectors: Tensor, *, text: ModalityStates | None = None, image: ModalityStates | None = None,
        keep: Tensor | None = None,
    ) -> FusionOutput:
        """Args: vectors (B, M, D); text, image unused; keep (M,) bool, False = erase that modality
        (dropped from the softmax: the kept weights renormalise to sum to 1).
        Returns: vector (B, D), modality_weights (B, M)."""
        _check_vectors(vectors, self.num_modalities, self.d_model)
        _check_keep(keep, self.num_modalities)
        scores = self.scores(vectors)  # (B, M)
        if keep is not None:
            scores = scores.masked_fill(~keep, float("-inf"))  # erased: weight exactly 0 (one modality always kept)
        weights = modality_weights(scores)  # (B, M), rows sum to 1
        mixed = (weights.unsqueeze(-1) * vectors).sum(dim=1)  # (B, D)
        return FusionOutput(self.project(mixed), modality_weights=weights)


class CrossModalFusion(nn.Module):
    """Text tokens attend to image patches; the result joins the concatenated modality vectors.

        c_t   = MultiHeadAttention(query = text_t, key = value = patches)   (B, T, D)
        j     = mean over real tokens of LayerNorm(text_t + c_t)            (B, D)
        f     = W [x_1; ...; x_M; j] + b                                    (B, D)

    Args:
        num_modalities: M (the modality vectors still enter, as in :class:`ConcatFusion`).
        d_model: D.
        n_heads: H of the cross-attention.
        dropout: on the cross-attention weights.
    """

    def __init__(self, num_modalities: int, d_model: int, n_heads: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_modalities, self.d_model = num_modalities, d_model
        self.cross_attention = MultiHeadAttention(d_model, n_heads, dropout)
        self.norm = nn.LayerNorm(d_model)
        self.project = nn.Linear((num_modalities + 1) * d_model, d_model)

    def attend(self, text: ModalityStates, image: ModalityStates) -> tuple[Tensor, Tensor]:
        """The joint text-image vector and the token -> patch weights.

        Args:
            text: token states (B, T, D) and token_mask (B, T).
            image: patch states (B, P, D) and token_mask (B, P).

        Returns:
            joint (B, D), weights (B, H, T, P): row t sums to 1 over the real patches for a
            real token t and is all zero for a padding token.
        """
        if text.states.shape[0] != image.states.shape[0] or text.states.shape[-1] != image.states.shape[-1]:
            raise ValueError(
                f"text states {tuple(text.states.shape)} and image states {tuple(image.states.shape)} "
                "must share B and D."
            )
        # True = this (token, patch) pair may attend: a real text token and a real patch
        attn_mask = text.token_mask[:, None, :, None] & image.token_mask[:, None, None, :]  # (B, 1, T, P)
        attended, weights = self.cross_attention(
            query=text.states, key=image.states, attn_mask=attn_mask, return_attention=True
        )  # (B, T, D), (B, H, T, P)
        joint = masked_mean(self.norm(text.states + attended), text.token_mask)  # (B, D)
        return joint, weights

    def forward(
        self, vectors: Tensor, *, text: ModalityStates | None = None, image: ModalityStates | None = None
    ) -> FusionOutput:
        """Args: vectors (B, M, D); text and image states (both required).

        Returns: vector (B, D), cross_weights (B, H, T, P).
        """
        _check_vectors(vectors, self.num_modalities, self.d_model)
        if text is None or image is None:
            raise ValueError("CrossModalFusion needs both the text and the image states (text=..., image=...).")
        joint, weights = self.attend(text, image)  # (B, D), (B, H, T, P)
        fused = torch.cat([vectors.flatten(1), joint], dim=-1)  # (B, (M + 1)·D)
        return FusionOutput(self.project(fused), cross_weights=weights)


def make_fusion(kind: FusionKind, num_modalities: int, d_model: int, *, n_heads: int = 2, dropout: float = 0.0) -> nn.Module:
    """Build a fusion by name: ``"concat"``, ``"gated"`` or ``"cross"``."""
    if kind == "concat":
        return ConcatFusion(num_modalities, d_model)
    if kind == "gated":
        return GatedModalityFusion(num_modalities, d_model)
    if kind == "cross":
        return CrossModalFusion(num_modalities, d_model, n_heads, dropout)
    raise ValueError(f"fusion must be one of {FUSIONS}, got {kind!r}.")
