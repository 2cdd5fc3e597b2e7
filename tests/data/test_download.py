"""download(): verified, atomic installs from a local HTTP server (no network)."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from redteam.data.download import ARCHIVES, download
from redteam.errors import DataError

FILES: dict[str, bytes] = {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        body = FILES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def make_zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buffer.getvalue()


def serve(server: str, path: str, body: bytes) -> tuple[str, str]:
    FILES[path] = body
    return server + path, hashlib.sha256(body).hexdigest()


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_install_unwraps_top_folder(server: str, tmp_path: Path) -> None:
    body = make_zip({"ml-100k/u.data": "1\t1\t5\t10\n", "ml-100k/u.info": "1 users\n"})
    url, digest = serve(server, "/ml-100k.zip", body)
    cache = tmp_path / "cache"
    result = download("ml-100k", cache_dir=cache, url=url, sha256=digest)
    assert result == cache / "ml-100k"
    assert (result / "u.data").read_text() == "1\t1\t5\t10\n"
    assert listing(cache) == ["ml-100k", "ml-100k/u.data", "ml-100k/u.info"]  # no temp leftovers
    # already present: returned without fetching (the url now 404s)
    FILES.pop("/ml-100k.zip")
    assert download("ml-100k", cache_dir=cache, url=url, sha256=digest) == result


def test_flat_archive_for_custom_name(server: str, tmp_path: Path) -> None:
    url, digest = serve(server, "/flat.zip", make_zip({"a.txt": "a", "sub/b.txt": "b"}))
    result = download("toy", cache_dir=tmp_path, url=url, sha256=digest.upper())
    assert listing(result) == ["a.txt", "sub", "sub/b.txt"]


def test_wrong_checksum_leaves_nothing(server: str, tmp_path: Path) -> None:
    url, _ = serve(server, "/bad.zip", make_zip({"ml-100k/u.data": "x"}))
    with pytest.raises(DataError, match=f"checksum mismatch for {url}: expected sha256 0+, got "):
        download("ml-100k", cache_dir=tmp_path, url=url, sha256="0" * 64)
    assert listing(tmp_path) == []


def test_path_traversal_refused(server: str, tmp_path: Path) -> None:
    url, digest = serve(server, "/evil.zip", make_zip({"ok/u.data": "x", "../evil.txt": "pwned"}))
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="unsafe path in archive: '../evil.txt'"):
        download("toy", cache_dir=cache, url=url, sha256=digest)
    assert listing(cache) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("member", ["/etc/abs.txt", "a/../../b.txt", "C:/win.txt"])
def test_other_unsafe_members(server: str, tmp_path: Path, member: str) -> None:
    url, digest = serve(server, "/unsafe.zip", make_zip({member: "x"}))
    with pytest.raises(DataError, match="unsafe path"):
        download("toy", cache_dir=tmp_path, url=url, sha256=digest)
    assert listing(tmp_path) == []


def test_missing_marker_and_bad_zip(server: str, tmp_path: Path) -> None:
    url, digest = serve(server, "/nomarker.zip", make_zip({"ml-1m/movies.dat": "1::A::B\n"}))
    with pytest.raises(DataError, match="archive has no ratings.dat"):
        download("ml-1m", cache_dir=tmp_path, url=url, sha256=digest)
    url, digest = serve(server, "/junk.zip", b"not a zip")
    with pytest.raises(DataError, match=f"{url}: not a zip archive"):
        download("toy", cache_dir=tmp_path, url=url, sha256=digest)
    assert listing(tmp_path) == []


def test_http_error_and_unverified(server: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"download failed: {server}/missing.zip: HTTP Error 404"):
        download("toy", cache_dir=tmp_path, url=f"{server}/missing.zip", sha256="0" * 64)
    with pytest.raises(DataError, match="no known checksum"):
        download("toy", cache_dir=tmp_path, url=f"{server}/flat.zip")
    with pytest.raises(DataError, match="unknown archive 'toy'"):
        download("toy", cache_dir=tmp_path)
    with pytest.raises(DataError, match="invalid archive name"):
        download("../x", cache_dir=tmp_path, url=f"{server}/flat.zip", sha256="0" * 64)
    assert listing(tmp_path) == []


def test_checksum_table_has_official_values() -> None:
    assert ARCHIVES["ml-100k"].url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert ARCHIVES["ml-1m"].url == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    for spec in ARCHIVES.values():
        assert spec.md5 is not None and len(spec.md5) == 32
        assert spec.sha256 is not None and len(spec.sha256) == 64
