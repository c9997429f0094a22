"""A cache of training runs: the same inputs give the same weights, so train them once.

On one kind of device a training run is determined by its inputs: the library's code and torch's
version; the number of CPU threads (a sum split over two threads rounds differently); the model's
class, its initial weights and buffers (its item features too) and every other setting of it and
its submodules (configs, dropout rates: :func:`settings_of`);
the training examples and the validation batches; the training config and seed; and the global
random state when training starts (dropout draws from it). The key of a run is a SHA-256 of all of
them, so any change is a miss and trains afresh; nothing is matched by
name. A hit loads the trained weights, the :class:`~course_lib.training.TrainResult` of the run
that made them (epochs, losses, validation scores, seconds) and the global random state that run
left behind, so a notebook continues exactly as after training.

:func:`course_lib.training.fit` uses it when asked (``cache=True``) or, by default, when the
environment variable ``COURSE_RUN_CACHE`` is ``1``: the test command sets it, so that the
notebooks' second execution (nbval, after the student edition) loads what the first one trained.

Only models whose class is defined in ``course_lib`` are cached (the code digest covers them); a
class written in a notebook always trains. Files go to ``data/runs/`` (:func:`course_lib.data.files.data_dir`),
written through a temporary file and renamed into place; an unreadable file is reported, trained
again and replaced. Delete the folder to retrain everything.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.batch import Batch
from .data.files import atomic_path, data_dir
from .data.split import TrainingExamples

FORMAT = "course_lib.run/2"  # written into every file; a file without it is not used (/1 kept no losses)
PACKAGE = Path(__file__).resolve().parent  # course_lib/
ENV_VAR = "COURSE_RUN_CACHE"  # "1": fit uses the cache unless told otherwise; "0" or unset: it does not


def enabled_by_environment() -> bool:
    """True when ``COURSE_RUN_CACHE`` is ``1``; ``0`` or unset is False; anything else is refused."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{ENV_VAR} must be 1 (use the run cache) or 0 (train every run), got {value!r}.")
    return value == "1"


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of every ``.py`` file of ``course_lib`` (path and bytes): any edit to the library is a new key."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _update(digest: hashlib._Hash, name: str, value: object) -> None:
    digest.update(name.encode())
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().contiguous()
        digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    else:
        digest.update(repr(value).encode())


def cacheable(model: nn.Module) -> bool:
    """True when ``model``'s class (and every submodule's) is defined in ``course_lib`` or torch and
    every setting of it can be hashed (:func:`settings_of`); other models always train."""
    if not all(type(m).__module__.startswith(("course_lib.", "torch.")) for m in model.modules()):
        return False
    try:
        settings_of(model)
    except TypeError:  # e.g. a function kept as an attribute: its effect cannot be keyed
        return False
    return True


def settings_of(model: nn.Module) -> list[tuple[str, object]]:
    """Every setting of ``model`` and its submodules that is not a weight: configs and plain attributes.

    A setting can change training without changing a single initial weight (DIN's ``objective``, a
    dropout rate, where positions are anchored), so the key must hold them all, not only the weights.
    Attributes of nn.Module's own bookkeeping (names starting with ``_``, ``training``) are left out;
    lists, tuples, dicts and objects of ``course_lib`` classes (e.g. a trie of item codes) are opened.

    Raises:
        TypeError: a setting of a type the key cannot hold (such a model always trains: :func:`cacheable`).
    """
    found: list[tuple[str, object]] = []
    for prefix, module in model.named_modules():
        for attribute, value in sorted(vars(module).items()):
            if not attribute.startswith("_") and attribute != "training":
                _flatten(f"{prefix}.{attribute}" if prefix else attribute, value, found, depth=0)
    return found


def _flatten(name: str, value: object, found: list[tuple[str, object]], depth: int) -> None:
    if isinstance(value, (bool, int, float, str, type(None), torch.Tensor, torch.dtype)) or dataclasses.is_dataclass(value):
        found.append((name, value))
    elif depth < 4 and isinstance(value, (tuple, list)):
        found.append((f"{name}.len", len(value)))
        for i, item in enumerate(value):
            _flatten(f"{name}[{i}]", item, found, depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for key in sorted(value, key=repr):
            _flatten(f"{name}[{key!r}]", value[key], found, depth + 1)
    elif depth < 4 and type(value).__module__.startswith("course_lib.") and hasattr(value, "__dict__"):
        found.append((f"{name}.class", type(value).__qualname__))
        for attribute, item in sorted(vars(value).items()):
            _flatten(f"{name}.{attribute}", item, found, depth + 1)
    else:
        raise TypeError(f"the run cache cannot hash the setting {name} ({type(value).__name__})")


def run_key(
    model: nn.Module, examples: TrainingExamples, valid: list[Batch], config: Any, device: torch.device | str
) -> str:
    """The SHA-256 key of a training run (see the module docstring for what it covers).

    ``config`` is the run's ``TrainConfig`` (typed loosely: ``course_lib.training`` imports this module).
    """
    digest = hashlib.sha256()
    _update(digest, "format", FORMAT)
    _update(digest, "code", code_digest())
    _update(digest, "torch", torch.__version__)
    _update(digest, "device", torch.device(device).type)
    _update(digest, "threads", torch.get_num_threads())  # CPU sums split over threads: another count, other weights
    _update(digest, "class", f"{type(model).__module__}.{type(model).__qualname__}")
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        _update(digest, f"model.{name}", tensor)
    for name, value in settings_of(model):
        _update(digest, f"setting.{name}", value)
    for field in dataclasses.fields(examples):
        _update(digest, f"examples.{field.name}", getattr(examples, field.name))
    for i, batch in enumerate(valid):
        for field in dataclasses.fields(batch):
            _update(digest, f"valid.{i}.{field.name}", getattr(batch, field.name))
    _update(digest, "config", dataclasses.replace(config, progress=False))
    for name, state in random_states(device).items():
        _update(digest, f"rng.{name}", state)
    return digest.hexdigest()


def random_states(device: torch.device | str) -> dict[str, torch.Tensor]:
    """The global random states training draws from: the CPU's, and the GPU's when training there."""
    device = torch.device(device)
    states = {"cpu": torch.random.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_random_states(states: dict[str, torch.Tensor], device: torch.device | str) -> None:
    torch.random.set_rng_state(states["cpu"])
    if "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], torch.device(device))


def run_path(model: nn.Module, key: str, folder: Path | str | None = None) -> Path:
    """``data/runs/<ModelClass>-<key prefix>.pt``."""
    return Path(folder or data_dir() / "runs") / f"{type(model).__name__}-{key[:24]}.pt"


def load_run(model: nn.Module, key: str, device: torch.device | str, folder: Path | str | None = None) -> dict[str, Any] | None:
    """Load the trained weights of run ``key`` into ``model`` and restore the random state it left.

    Returns:
        The fields of the run's ``TrainResult`` (as :func:`save_run` got them), or None when there
        is no usable file (missing, unreadable, another key or format).
    """
    path = run_path(model, key, folder)
    if not path.exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != FORMAT or saved.get("key") != key:
            raise ValueError(f"it holds {saved.get('format')!r} with another key")
        model.load_state_dict(saved["state_dict"])
    except Exception as error:  # a truncated or foreign file: train again and replace it
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(f"ignoring the cached run {path}: it cannot be used ({reason[:120]}); training again and replacing it.", stacklevel=3)
        return None
    model.to(device)
    set_random_states(saved["rng_after"], device)
    return dict(saved["result"])


def save_run(
    model: nn.Module, key: str, result: dict[str, Any], rng_after: dict[str, torch.Tensor], folder: Path | str | None = None
) -> Path:
    """Write the trained weights of run ``key`` and its ``result`` fields atomically.

    ``result`` holds plain numbers, strings and lists (``dataclasses.asdict`` of a ``TrainResult``),
    so the file loads with ``weights_only=True``.
    """
    path = run_path(model, key, folder)
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save({"format": FORMAT, "key": key, "state_dict": state, "result": result, "rng_after": rng_after}, temporary)
    return path
