"""Make runs repeatable: the same notebook on the same device gives the same numbers."""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    Samplers in ``course_lib`` take explicit generators; this call covers the global
    ones that notebooks and ``torch.nn`` initialisers use.

    Args:
        seed: a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_seed expects a non-negative integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
