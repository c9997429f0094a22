"""An image encoder with attention over patches (a tiny Vision Transformer).

    x       = patchify((image - mean) / std)     (B, P, C·p·p)   pixels standardised first   P = (S / p)² patches, row by row
    z_0     = x W_E + pos                        (B, P, D)       linear patch embedding + learned positions
    Z       = TransformerEncoder(z_0)            (B, P, D)       every patch attends to every patch
    pooled  = mean_p Z_p                         (B, D)

With ``n_layers = 0`` there is no Transformer: ``Z = z_0`` and the pooled vector is a linear
readout of the pixels (the control that shows what self-attention over the patches adds).

The patch order is row-major (the top-left patch first, then along the row) and the
features inside one patch are ordered (channel, row, column): exactly what
``torch.nn.functional.unfold(image, p, stride=p).transpose(1, 2)`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...layers import LearnedPositionalEncoding, TransformerConfig, TransformerEncoder
from .states import ModalityStates


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """Cut square images into non-overlapping square patches, each flattened to a vector.

    Args:
        images: (B, C, S, S) float, channels first; S divisible by ``patch_size``.
        patch_size: p, the side of one patch in pixels.

    Returns:
        (B, P, C·p·p) with P = (S / p)²; patch k covers rows ``(k // (S/p))·p ...`` and columns
        ``(k % (S/p))·p ...``; its features are ordered (channel, row, column).
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, C, S, S) tensor, channels first; got {shape}.")
    batch, channels, height, width = images.shape
    if height != width or height % patch_size:
        raise ValueError(
            f"images must be square with a side divisible by patch_size = {patch_size}; got {height} x {width}."
        )
    n = height // patch_size  # patches per side
    x = images.reshape(batch, channels, n, patch_size, n, patch_size)  # (B, C, n, p, n, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, n_row, n_col, C, p, p)
    return x.reshape(batch, n * n, channels * patch_size * patch_size)  # (B, P, C·p·p)


@dataclass(frozen=True)
class PatchEncoderConfig:
    image_size: int = 24  # S, images are (C, S, S)
    patch_size: int = 6  # p, side of a patch; S must be divisible by it
    channels: int = 3  # C, colour channels
    d_model: int = 32  # D, size of every patch state
    n_heads: int = 2  # H, attention heads per block
    n_layers: int = 1  # bidirectional Transformer blocks over the patches; 0 = a linear readout (no attention)
    dropout: float = 0.1  # dropout inside the blocks
    pixel_mean: float = 0.7  # subtracted from every pixel in [0, 1] (ShopWorld's light images average about 0.7)
    pixel_std: float = 0.3  # then divided by this, so the patch embedding sees inputs of unit scale

    def __post_init__(self) -> None:
        if isinstance(self.n_layers, bool) or not isinstance(self.n_layers, int) or self.n_layers < 0:
            raise ValueError(f"n_layers must be an int >= 0 (0 = linear readout, no attention), got {self.n_layers!r}.")
        if self.pixel_std <= 0:
            raise ValueError(f"pixel_std must be positive, got {self.pixel_std}.")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size = {self.image_size} must be divisible by patch_size = {self.patch_size}."
            )

    @property
    def num_patches(self) -> int:
        """P = (S / p)²."""
        return (self.image_size // self.patch_size) ** 2


class PatchEncoder(nn.Module):
    """Patches → linear embedding + learned positions → self-attention → mean pooling.

    Args:
        config: a :class:`PatchEncoderConfig`.
    """

    def __init__(self, config: PatchEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embedding = nn.Linear(config.channels * config.patch_size**2, config.d_model)  # W_E
        self.positions = LearnedPositionalEncoding(config.d_model, config.num_patches)
        self.encoder = None  # n_layers = 0: the linear readout, no attention
        if config.n_layers > 0:
            self.encoder = TransformerEncoder(
                TransformerConfig(
                    d_model=config.d_model, n_heads=config.n_heads, n_layers=config.n_layers,
                    dropout=config.dropout, causal=False,
                )
            )

    def forward(self, images: Tensor, *, return_attention: bool = False) -> ModalityStates:
        """Encode images.

        Args:
            images: (B, C, S, S) float (e.g. pixels / 255).
            return_attention: also return the patch × patch weights of every layer.

        Returns:
            :class:`ModalityStates` with pooled (B, D), states (B, P, D), token_mask (B, P)
            all True (every patch is real), attention (B, n_layers, H, P, P) if asked
            (None when n_layers = 0: there is no attention to return).
        """
        c = self.config
        if not isinstance(images, Tensor) or images.shape[1:] != (c.channels, c.image_size, c.image_size):
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"PatchEncoder expects images (B, {c.channels}, {c.image_size}, {c.image_size}), got {shape}; "
                "images stored (N, S, S, 3) uint8 need images_to_tensor(...) first."
            )
        if not images.is_floating_point():
            raise TypeError(f"images must be a float tensor (pixels / 255), got dtype {images.dtype}.")
        patches = patchify((images - c.pixel_mean) / c.pixel_std, c.patch_size)  # (B, P, C·p·p)
        x = self.positions(self.patch_embedding(patches))  # (B, P, D)
        token_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)  # (B, P)
        if self.encoder is None:  # linear readout: the embedded patches are the states
            states, attention = x, None
        elif return_attention:
            states, attention = self.encoder(x, return_attention=True)  # (B, P, D), (B, n_layers, H, P, P)
        else:
            states, attention = self.encoder(x), None
        return ModalityStates(states.mean(dim=1), states, token_mask, attention)
