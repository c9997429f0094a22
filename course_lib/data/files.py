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
from collections.abc import Iterator
from pathlib import Path

DATA_DIR_ENV_VAR = "COURSE_DATA_DIR"
"""Environment variable naming the data folder, overriding the default."""

_CHUNK = 1 << 20  # bytes read at a time when hashing


def data_dir() -> Path:
    """Return the folder where datasets are cached, creating it if needed.

    Order: ``$COURSE_DATA_DIR`` when set; else the repository's ``data/`` folder next to
    ``course_lib`` when it exists (a clone); else ``~/.cache/attention-course``.

    Returns:
        An existing directory.
    """
    override = os.environ.get(DATA_DIR_ENV_VAR, "").strip()
    if override:
        path = Path(override).expanduser()
    else:
        repo_data = Path(__file__).resolve().parents[2] / "data"
        path = repo_data if repo_data.is_dir() else Path.home() / ".cache" / "attention-course"
    path.mkdir(parents=True, exist_ok=True)
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
