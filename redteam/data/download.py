"""Fetch the official MovieLens archives into a cache, verified and extracted atomically.

Checksums: the MD5 values are the ones GroupLens publishes next to each archive
(``https://files.grouplens.org/datasets/movielens/<name>.zip.md5``); the SHA-256 values are the
digests of the same archives as pinned, identically, by several independent public projects
(e.g. the Keras MovieLens examples for ml-1m, scikit-style fetchers for ml-100k). Both are
checked when known. An archive with no known checksum is refused unless ``sha256`` is given.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from redteam.errors import DataError

__all__ = ["ARCHIVES", "Archive", "default_cache_dir", "download"]

_GROUPLENS = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Archive:
    url: str
    md5: str | None  # published by GroupLens (<url>.md5)
    sha256: str | None
    marker: str  # a file the extracted folder must contain


ARCHIVES: dict[str, Archive] = {
    "ml-100k": Archive(
        url=f"{_GROUPLENS}/ml-100k.zip",
        md5="0e33842e24a9c977be4e0107933c0723",
        sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        marker="u.data",
    ),
    "ml-1m": Archive(
        url=f"{_GROUPLENS}/ml-1m.zip",
        md5="c4d9eecfca2ab87c1945afe126590906",
        sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        marker="ratings.dat",
    ),
}

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


def default_cache_dir() -> Path:
    """``$REDTEAM_CACHE_DIR/data`` or ``~/.cache/redteam/data``: where downloads go."""
    root = os.environ.get("REDTEAM_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "redteam") / "data"


def download(name: str, *, cache_dir: str | Path, url: str | None = None, sha256: str | None = None) -> Path:
    """Download, verify and extract archive ``name`` into ``cache_dir/name/``; return that folder.

    Does nothing when the folder already exists. ``url`` overrides the official address;
    ``sha256`` adds (or, for unknown names or a replaced ``url``, supplies) the expected digest.
    With a known name and its official url, the GroupLens MD5 and the pinned SHA-256 are checked.
    The archive's single top-level folder (``ml-100k/``) is unwrapped, so that the result holds
    ``u.data`` directly. Nothing is left half written: the download goes to a temporary file,
    extraction to a temporary folder, and the result appears by one rename.
    """
    cache_dir = Path(cache_dir)
    _check_name(name)
    target = cache_dir / name
    spec = ARCHIVES.get(name)
    if target.is_dir():
        if spec is not None and not (target / spec.marker).is_file():
            raise DataError(f"{target} exists but has no {spec.marker}; remove it and download again")
        return target
    if spec is None and url is None:
        raise DataError(f"unknown archive {name!r}: pass url= (known: {', '.join(sorted(ARCHIVES))})")
    source = url or spec.url  # type: ignore[union-attr]
    official = spec is not None and source == spec.url
    expected = {
        "md5": spec.md5 if official else None,  # type: ignore[union-attr]
        "sha256": sha256 or (spec.sha256 if official else None),  # type: ignore[union-attr]
    }
    expected = {k: v.lower() for k, v in expected.items() if v}
    if not expected:
        raise DataError(f"refusing to install {source}: no known checksum; pass sha256=")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create cache folder {cache_dir}: {exc}") from None
    archive = _fetch(source, cache_dir, expected)
    try:
        _install(archive, source, target, marker=spec.marker if spec else None)
    finally:
        archive.unlink(missing_ok=True)
    return target


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DataError(f"invalid archive name {name!r}")


def _fetch(url: str, folder: Path, expected: dict[str, str]) -> Path:
    """Stream ``url`` into a temporary file in ``folder`` and check its digests."""
    digests = {kind: hashlib.new(kind) for kind in expected}
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-", suffix=".part")
    except OSError as exc:
        raise DataError(f"cannot write into {folder}: {exc}") from None
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        path.unlink(missing_ok=True)
        plain_url_error = isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError)
        reason = exc.reason if plain_url_error else exc  # type: ignore[union-attr]
        raise DataError(f"download failed: {url}: {reason}") from None
    for kind, digest in digests.items():
        actual = digest.hexdigest()
        if actual != expected[kind]:
            path.unlink(missing_ok=True)
            raise DataError(f"checksum mismatch for {url}: expected {kind} {expected[kind]}, got {actual}")
    return path


def _install(archive: Path, url: str, target: Path, *, marker: str | None) -> None:
    """Extract ``archive`` into a temporary folder next to ``target``, then rename it."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        _extract(archive, url, staging)
        root = _unwrap(staging)
        if marker is not None and not (root / marker).is_file():
            raise DataError(f"{url}: archive has no {marker}")
        try:
            os.rename(root, target)
        except OSError:
            if not target.is_dir():  # lost a race to another process: theirs is as good
                raise
    except OSError as exc:
        raise DataError(f"cannot install {url} into {target}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, url: str, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member(info, url)
            for info in members:
                zf.extract(info, dest)
    except zipfile.BadZipFile:
        raise DataError(f"{url}: not a zip archive") from None


def _check_member(info: zipfile.ZipInfo, url: str) -> None:
    """Refuse absolute paths, ``..`` components, drive letters and symbolic links."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(f"{url}: unsafe path in archive: {info.filename!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DataError(f"{url}: symbolic link in archive: {info.filename!r}")


def _unwrap(folder: Path) -> Path:
    """The single top-level directory of an extracted archive, else the folder itself."""
    entries = [p for p in folder.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder
