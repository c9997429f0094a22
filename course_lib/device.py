"""Pick the device a notebook runs on.

Models never store a device: notebooks call :func:`get_device` once, visibly, and
move tensors and modules there.
"""

from __future__ import annotations

import os

import torch

DEVICE_ENV_VAR = "COURSE_DEVICE"
"""Environment variable that overrides the automatic choice, e.g. ``cpu`` or ``cuda:1``."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def get_device() -> torch.device:
    """Return the device to compute on: CUDA, then Apple MPS, then CPU.

    Set the environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``,
    ``mps``) to choose by hand, for example to compare a GPU run with a CPU run.

    Returns:
        A ``torch.device``.

    Raises:
        ValueError: if ``COURSE_DEVICE`` names something that is not a device.
        RuntimeError: if ``COURSE_DEVICE`` names a device this machine does not have.
    """
    requested = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r} is not a device name; "
                "expected something like 'cpu', 'cuda', 'cuda:0' or 'mps'."
            ) from exc
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"{DEVICE_ENV_VAR}={requested!r} asks for CUDA, but torch sees no CUDA GPU "
                    f"(torch {torch.__version__}). Unset {DEVICE_ENV_VAR} to fall back to the CPU."
                )
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise RuntimeError(
                    f"{DEVICE_ENV_VAR}={requested!r} asks for GPU {device.index}, "
                    f"but only {torch.cuda.device_count()} CUDA device(s) exist."
                )
        elif device.type == "mps" and not _mps_available():
            raise RuntimeError(
                f"{DEVICE_ENV_VAR}={requested!r} asks for Apple MPS, which is not available here."
            )
        elif device.type not in {"cpu", "cuda", "mps"}:
            raise ValueError(
                f"{DEVICE_ENV_VAR}={requested!r}: the course supports 'cpu', 'cuda' and 'mps'."
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")
