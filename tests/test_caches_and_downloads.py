"""Caches and downloads under faults: a damaged cache is set aside and recomputed, a read-only
folder still gives results with one clear message, a server that trickles bytes hits a deadline.

Each test failed on the code before issue 15 (defect 10): the cache was returned unchecked (a
bit flip gave values of 1e37), a read-only folder raised a raw OSError and threw away the
embeddings just computed, and the GroupLens download only had a per-read timeout.
"""

from __future__ import annotations

import http.server
import threading
import time

import pytest
import torch
from factories import CountingEncoder

import course_lib.text_encoder as te
from course_lib.data import files, movielens
from course_lib.data.files import DataDirUnavailable

TEXTS = ["Toy Story (1995). Genres: Comedy.", "Heat (1995). Genres: Action."]


def cached_payload(tmp_path):
    """Embed TEXTS once (writing the cache) and return the cache path and its payload."""
    te.item_text_embeddings(TEXTS, CountingEncoder(), folder=tmp_path)
    path = te.cache_path(TEXTS, CountingEncoder.name, folder=tmp_path)
    return path, torch.load(path, weights_only=True)


def flip_an_exponent_bit(payload):
    payload["embeddings"].view(torch.int32)[0, 0] ^= 1 << 29  # 0.99 -> about 0.03: the row is no longer unit length
    return payload


def flip_a_mantissa_bit(payload):
    payload["embeddings"].view(torch.int32)[0, 0] ^= 1  # a change of 1e-7 that only the checksum sees
    return payload


def wrong_width(payload):
    values = torch.nn.functional.normalize(torch.ones(2, 5), dim=1)
    return {**payload, "embeddings": values, "sha256": te._tensor_digest(values)}


def all_nan(payload):
    values = torch.full((2, 3), float("nan"))
    return {**payload, "embeddings": values, "sha256": te._tensor_digest(values)}


def float64(payload):
    values = payload["embeddings"].double()
    return {**payload, "embeddings": values, "sha256": te._tensor_digest(values)}


@pytest.mark.parametrize("damage, problem", [
    (flip_an_exponent_bit, "rows should have length 1"), (flip_a_mantissa_bit, "its checksum does not match"),
    (wrong_width, r"expected shape \(2, 3\), got \(2, 5\)"), (all_nan, "it holds NaN or inf"), (float64, "expected float32"),
])
def test_a_damaged_cache_is_set_aside_and_recomputed(tmp_path, damage, problem):
    path, payload = cached_payload(tmp_path)
    expected = payload["embeddings"].clone()
    torch.save(damage(payload), path)
    damaged = path.read_bytes()
    encoder = CountingEncoder()
    with pytest.warns(UserWarning, match=f"was not used: {problem}.*; set it aside as {path.name}.corrupt-"):
        out = te.item_text_embeddings(TEXTS, encoder, folder=tmp_path)
    assert encoder.calls == 1 and torch.equal(out, expected)
    kept = list(tmp_path.glob("*.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged, "the damaged file is kept, never deleted"
    assert torch.equal(torch.load(path, weights_only=True)["embeddings"], expected), "a good cache replaces it"


def test_a_good_cache_is_used_and_an_older_plain_tensor_cache_still_counts(tmp_path):
    path, payload = cached_payload(tmp_path)
    encoder = CountingEncoder()
    assert torch.equal(te.item_text_embeddings(TEXTS, encoder, folder=tmp_path), payload["embeddings"])
    torch.save(payload["embeddings"], path)  # the format before checksums were stored
    assert torch.equal(te.item_text_embeddings(TEXTS, encoder, folder=tmp_path), payload["embeddings"])
    assert encoder.calls == 0


def test_a_read_only_cache_folder_still_returns_the_embeddings(tmp_path, monkeypatch):
    def read_only(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(te, "atomic_path", read_only)  # works as root too, where chmod restricts nothing
    with pytest.warns(UserWarning, match=r"could not be cached .*Permission denied.*Set the environment variable COURSE_DATA_DIR"):
        out = te.item_text_embeddings(TEXTS, CountingEncoder(), folder=tmp_path)
    assert out.shape == (2, 3) and list(tmp_path.iterdir()) == []


def test_a_data_folder_that_cannot_be_made_gives_one_clear_message(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(files.DATA_DIR_ENV_VAR, str(blocker / "data"))  # mkdir fails: a file is in the way
    with pytest.raises(DataDirUnavailable, match=r"cannot write to the data folder .*Set the environment variable COURSE_DATA_DIR"):
        files.data_dir()
    with pytest.warns(UserWarning, match="could not be cached"):
        assert te.item_text_embeddings(TEXTS, CountingEncoder()).shape == (2, 3)
    with pytest.raises(DataDirUnavailable, match="COURSE_DATA_DIR"):
        movielens.ensure_movielens_100k(blocker / "data", verbose=False)


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


@pytest.fixture
def trickling_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip"
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
def test_a_trickling_server_meets_the_total_deadline_and_leaves_no_file(tmp_path, monkeypatch, trickling_server):
    monkeypatch.setattr(movielens, "GROUPLENS_URL", trickling_server)
    monkeypatch.setattr(movielens, "DOWNLOAD_DEADLINE_S", 1.0)
    start = time.monotonic()
    with pytest.raises(movielens.SourceFailed, match="longer than 1 s in total"):
        movielens._fetch_grouplens(tmp_path, timeout=5.0)  # each read is far quicker than 5 s
    assert time.monotonic() - start < 10
    assert list(tmp_path.iterdir()) == [], "no half-written file"


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


def test_a_normal_download_arrives_whole(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Whole)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        movielens._download_url(f"http://127.0.0.1:{server.server_address[1]}/x", tmp_path / "x", 5.0)
    finally:
        server.shutdown()
        server.server_close()
    assert (tmp_path / "x").read_bytes() == Whole.body
