"""Where data lives, checksums, and atomic writes.

Fetched or generated data is cached in the repository's ``data/`` folder (git-ignored,
except ``data/README.md``). Set the environment variable ``COURSE_DATA_DIR`` to use
another folder.

Every file is written atomically: the bytes go to a temporary file in the target folder,
are checked, and only then renamed over the destination (``os.replace``), so an
interrupted download or a failed check never leaves a half-written file under the final
name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DATA_DIR_ENV_VAR = "COURSE_DATA_DIR"
"""Environment variable naming the data folder, overriding the default."""

_CHUNK = 1 << 20  # bytes read at a time when hashing


class DataDirUnavailable(OSError):
    """The data folder cannot be created or written; the message names ``COURSE_DATA_DIR``."""


def not_writable(folder: Path, error: OSError) -> DataDirUnavailable:
    """The error for a data folder that cannot be written, in words that say what to do."""
    return DataDirUnavailable(
        f"cannot write to the data folder {folder} ({error.strerror or error}). Set the environment variable "
        f"{DATA_DIR_ENV_VAR} to a folder you can write to (e.g. `export {DATA_DIR_ENV_VAR}=~/course-data`, or "
        f"os.environ[{DATA_DIR_ENV_VAR!r}] = ... before importing course_lib) and run the cell again."
    )


def check_writable(folder: Path) -> None:
    """Raise :class:`DataDirUnavailable` unless a file can be created in ``folder`` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".write-check-")
    except OSError as error:
        raise not_writable(folder, error) from error
    os.close(handle)
    os.unlink(name)  # the probe file this function just made


def free_name(path: Path, label: str, *, keep_suffix: bool = False) -> Path:
    """A name next to ``path`` that no file has: ``NAME.<label>-<date>-<time>`` (a counter added if needed).

    With ``keep_suffix`` the suffix stays last (``notes.mine-<date>-<time>.ipynb``), so the file
    still opens with the same program.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem, suffix = (path.stem, path.suffix) if keep_suffix else (path.name, "")
    candidate = path.with_name(f"{stem}.{label}-{stamp}{suffix}")
    counter = 1
    while candidate.exists():
        candidate = path.with_name(f"{stem}.{label}-{stamp}-{counter}{suffix}")
        counter += 1
    return candidate


def set_aside(path: Path) -> Path:
    """Rename a file that failed its check to ``NAME.corrupt-<date>-<time>`` and return the new path.

    The name is never an existing one, so a copy set aside earlier is never overwritten; nothing
    is deleted.
    """
    candidate = free_name(path, "corrupt")
    os.replace(path, candidate)
    return candidate


def data_dir() -> Path:
    """Return the folder where datasets are cached, creating it if needed.

    Order: ``$COURSE_DATA_DIR`` when set; else the repository's ``data/`` folder next to
    ``course_lib`` when it exists (a clone); else ``~/.cache/attention-course``.

    Returns:
        An existing directory.

    Raises:
        DataDirUnavailable: the folder cannot be created (read-only file system, no permission).
    """
    override = os.environ.get(DATA_DIR_ENV_VAR, "").strip()
    if override:
        path = Path(override).expanduser()
    else:
        repo_data = Path(__file__).resolve().parents[2] / "data"
        path = repo_data if repo_data.is_dir() else Path.home() / ".cache" / "attention-course"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise not_writable(path, error) from error
    return path


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``"sha256"`` or ``"md5"``), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bytes_digest(data: bytes, algorithm: str = "sha256") -> str:
    """Hex digest of some bytes."""
    return hashlib.new(algorithm, data).hexdigest()


@contextlib.contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; rename it there on success.

    Write (and verify) the file at the yielded path inside the ``with`` block. If the
    block raises, the temporary file is removed and ``destination`` is left untouched.

    Args:
        destination: the final file name.

    Yields:
        A path in the same folder (so the final rename is atomic on one file system).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o644)  # mkstemp creates 0o600; cached data is ordinary readable files
        os.replace(temporary, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def atomic_write_bytes(destination: Path, data: bytes) -> None:
    """Write ``data`` to ``destination`` atomically (temporary file, fsync, rename)."""
    with atomic_path(destination) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
