"""Write a generated folder (an edition) without ever deleting or overwriting what a person made.

Every edition (the student edition, the slides, the site) is first built in a fresh temporary
folder next to its destination and then *published* by :func:`publish`, which keeps a manifest,
``.course-edition.json``, of every file it wrote with its sha256. On the next build:

* the destination does not exist or is an empty folder: the new edition is moved into place;
* the destination holds this tool's manifest and nothing in it changed since (every listed file
  has its recorded hash, and no other file was added): the old edition is swapped out and removed
  (it is a folder this tool made, unchanged), the new one swapped in;
* anything else (a folder this tool did not make, such as ``.``, the repository, or a notebooks
  folder; or an edition in which a notebook was edited or a file added): nothing is touched, and
  :class:`OutputFolderError` says which files are someone's work and how to go on.

``force=True`` (``make student FORCE=1``) still deletes nothing: in an edition folder with
edits, every edited file is first renamed to ``NAME.mine-YYYYmmdd-HHMMSS.SUFFIX`` (a name that
does not exist yet), files the person added stay where they are, and the new edition's files
are written next to them. A folder without the manifest is never written into, forced or not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from course_lib.data.files import free_name

MANIFEST = ".course-edition.json"
_FORCE_HINT = "FORCE=1 (make) or --force (tools/*.py)"


class OutputFolderError(RuntimeError):
    """The destination holds someone's work (or is not an edition folder): nothing was changed."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (the manifest excluded) -> its sha256; paths relative, with '/'."""
    return {
        path.relative_to(folder).as_posix(): _digest(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _read_manifest(folder: Path) -> dict[str, str] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else None


def _write_manifest(folder: Path, files: dict[str, str], tool: str) -> None:
    text = json.dumps({"tool": tool, "written": time.strftime("%Y-%m-%d %H:%M:%S"), "files": files}, indent=1)
    (folder / MANIFEST).write_text(text + "\n", encoding="utf-8")


def changes(folder: Path) -> tuple[list[str], list[str]]:
    """(edited, added): files of an edition folder that differ from its manifest, and files it does not list."""
    recorded = _read_manifest(folder) or {}
    present = _files(folder)
    edited = sorted(name for name, digest in present.items() if name in recorded and recorded[name] != digest)
    added = sorted(name for name in present if name not in recorded)
    return edited, added


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def publish(built: Path, out: Path, *, tool: str, force: bool = False) -> list[str]:
    """Move the freshly built edition ``built`` to ``out`` (see the module docstring); ``built`` is consumed.

    Args:
        built: a folder this tool just filled (it is moved or removed here).
        out: the destination folder.
        tool: a name for messages and the manifest (e.g. ``"student edition"``).
        force: in an edition folder with edits, keep the edits under backup names and write anyway.

    Returns:
        Messages about what was kept (empty when nothing needed keeping).

    Raises:
        OutputFolderError: ``out`` is not this tool's folder, or holds edits and ``force`` is False.
    """
    out = Path(out)
    files = _files(built)
    try:
        if not out.exists() or (out.is_dir() and not any(out.iterdir())):
            out.parent.mkdir(parents=True, exist_ok=True)
            _write_manifest(built, files, tool)
            os.replace(built, out)  # a rename; it may take the place of an empty folder (nothing in it to lose)
            return []
        if not out.is_dir() or _read_manifest(out) is None:
            what = "a file" if not out.is_dir() else "a folder that is not empty and was not written by this tool"
            raise OutputFolderError(
                f"{out} is {what}; the {tool} goes into a new or empty folder (or one it made before), "
                "so nothing was written. Choose another output folder."
            )
        edited, added = changes(out)
        if not edited and not added:  # an unchanged edition this tool made: swap the new one in
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            _write_manifest(built, files, tool)
            os.replace(out, old)
            os.replace(built, out)
            shutil.rmtree(old)  # the previous edition: made by this tool, checked unchanged just above
            return []
        if not force:
            lines = [f"{out} holds work that is not the {tool}'s, so nothing was changed:"]
            if edited:
                lines.append(f"  edited since the last build: {_listing(edited)}")
            if added:
                lines.append(f"  added since the last build: {_listing(added)}")
            lines.append(
                f"To rebuild anyway, keeping all of it, add {_FORCE_HINT}: edited files are renamed to "
                "NAME.mine-<date>-<time>.SUFFIX and added files stay where they are. Or build into another folder."
            )
            raise OutputFolderError("\n".join(lines))
        kept = []
        for name in edited:
            backup = free_name(out / name, "mine", keep_suffix=True)
            os.replace(out / name, backup)
            kept.append(f"kept your edited {name} as {backup.relative_to(out).as_posix()}")
        kept += [f"left your file {name} in place" for name in added if name not in files]
        clashes = [name for name in added if name in files]
        for name in clashes:  # a file the person added under a name the new edition uses: keep theirs aside too
            backup = free_name(out / name, "mine", keep_suffix=True)
            os.replace(out / name, backup)
            kept.append(f"kept your {name} as {backup.relative_to(out).as_posix()}")
        for name in files:
            target = out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(built / name, target)
        _write_manifest(out, files, tool)
        return kept
    finally:
        if built.exists():
            shutil.rmtree(built)  # the temporary folder this tool made


@contextmanager
def building(out: Path) -> Iterator[Path]:
    """A fresh temporary folder next to ``out`` to build into (removed if the build fails)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
