"""Run a module in evaluation mode for a while, then give it back its own mode.

Evaluation, explanations and serving all need dropout off, but must not leave a model that
a student is still training in eval mode. One context manager does that everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode inside the ``with`` block and restore its mode afterwards.

    Args:
        module: any ``nn.Module``.

    Yields:
        The same module, in eval mode.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
