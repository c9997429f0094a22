"""LoRA, from scratch: a trainable low-rank update next to a frozen linear layer (Hu et al., 2021).

A frozen layer computes :math:`y = W x + b` with :math:`W \\in \\mathbb{R}^{d_{out} \\times d_{in}}`.
LoRA keeps :math:`W` and :math:`b` fixed and learns :math:`A \\in \\mathbb{R}^{r \\times d_{in}}`,
:math:`B \\in \\mathbb{R}^{d_{out} \\times r}` with a small rank :math:`r`:

.. math::  y = W x + b + \\frac{\\alpha}{r} B A x .

:math:`B` starts at zero, so before any training step the wrapped model computes exactly what the
frozen one did (tested); :math:`A` starts like an ``nn.Linear`` weight (Kaiming-uniform, as in
``peft``). Only :math:`A` and :math:`B` train: :math:`r (d_{in} + d_{out})` numbers instead of
:math:`d_{in} d_{out}`. GPT-2's ``Conv1D`` stores its weight transposed, (d_in, d_out), and computes
:math:`x W + b`; the wrapper handles both. The result equals ``peft``'s LoRA given the same A and B
(tested on GPT-2's ``c_attn`` and on an ``nn.Linear``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D


def lora_delta(x: Tensor, lora_a: Tensor, lora_b: Tensor, scaling: float) -> Tensor:
    """The low-rank update ``scaling * B A x`` for inputs x (..., d_in) -> (..., d_out)."""
    return (x @ lora_a.T) @ lora_b.T * scaling  # (..., r) then (..., d_out)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` or GPT-2 ``Conv1D`` plus a trainable update ``(alpha / r) B A``.

    Args:
        base: the layer to adapt; its parameters are frozen (``requires_grad = False``).
        r: the rank (>= 1).
        alpha: the scale numerator; the update is multiplied by ``alpha / r``.
    """

    def __init__(self, base: nn.Module, r: int, alpha: float = 1.0) -> None:
        super().__init__()
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"the LoRA rank r must be an int >= 1, got {r!r}.")
        if isinstance(base, nn.Linear):
            d_in, d_out = base.in_features, base.out_features
        elif isinstance(base, Conv1D):
            d_in, d_out = base.weight.shape  # Conv1D stores (d_in, d_out)
        else:
            raise TypeError(f"LoRA wraps an nn.Linear or a GPT-2 Conv1D, got {type(base).__name__}.")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_a = nn.Parameter(torch.empty(r, d_in))  # (r, d_in)
        self.lora_b = nn.Parameter(torch.zeros(d_out, r))  # (d_out, r): zero, so the update starts at 0
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear's weight (and peft)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + lora_delta(x, self.lora_a, self.lora_b, self.scaling)

    def merged_weight(self) -> Tensor:
        """The frozen weight plus the update, in the base layer's own layout (Linear (d_out, d_in), Conv1D (d_in, d_out))."""
        delta = self.lora_b @ self.lora_a * self.scaling  # (d_out, d_in)
        return self.base.weight + (delta if isinstance(self.base, nn.Linear) else delta.T)


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith(f".{target}")


def apply_lora(model: nn.Module, target_modules: Sequence[str], *, r: int, alpha: float = 1.0) -> list[str]:
    """Freeze every parameter of ``model`` and wrap the named layers in :class:`LoRALinear`, in place.

    A layer matches a target when its full name equals it or ends with ``"." + target``
    (``"c_attn"`` matches ``transformer.h.0.attn.c_attn``), as in ``peft``'s ``target_modules``.

    Args:
        model: e.g. a ``GPT2LMHeadModel``.
        target_modules: names of layers to adapt (each must match at least one layer).
        r: the rank; alpha: the scale numerator.

    Returns:
        The full names of the wrapped layers.
    """
    if isinstance(target_modules, str) or not target_modules:
        raise ValueError(f"target_modules must be a non-empty list of layer names, got {target_modules!r}.")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"the LoRA rank r must be an int >= 1, got {r!r}.")
    names = dict(model.named_modules())
    found = {t: [n for n, m in names.items() if _matches(n, t) and isinstance(m, (nn.Linear, Conv1D))] for t in target_modules}
    missing = [t for t, hits in found.items() if not hits]
    if missing:
        layers = sorted({n.rsplit(".", 1)[-1] for n, m in names.items() if isinstance(m, (nn.Linear, Conv1D))})
        raise ValueError(f"no nn.Linear or Conv1D layer named {missing} in {type(model).__name__}; its layers are named {layers}.")
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = sorted({n for hits in found.values() for n in hits})
    for full in wrapped:
        parent_name, _, child = full.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), r, alpha))
    return wrapped


def trainable_parameters(model: nn.Module) -> int:
    """How many numbers an optimiser would update (parameters with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
