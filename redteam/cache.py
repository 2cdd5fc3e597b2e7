"""Trained-model cache keyed by content: (training data, component config, seed, code version).

A second run of the same scenario loads the victim instead of retraining it. Entries are
safetensors + JSON directories written atomically (a temp dir renamed into place).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import redteam
from redteam.errors import DataError

T = TypeVar("T")
# Every source outside victims/ that a trained model's weights depend on: the trainer and what it
# draws on (negative samplers, seed derivation, the batch-invariant scoring and the metric that
# together select the best epoch), and environment.py, which sets the torch configuration every
# product is trained under. A victim's own code is the closure of its module's imports inside
# victims/ (victim_sources). tests/test_cache.py follows the imports and fails when one is missing.
TRAINER_SOURCES = ("redteam/training.py", "redteam/trainer_loop.py", "redteam/negatives.py", "redteam/seeding.py",
                   "redteam/metrics.py", "redteam/metrics_ranks.py", "redteam/batch_invariance.py",
                   "redteam/environment.py")
ROOT = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path:
    env = os.environ.get("REDTEAM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "redteam"


def victim_sources(module: str) -> list[Path]:
    """The files a victim module is built from: its own file and, through its imports (at any depth,
    function-level and relative ones included), every module of the ``victims`` package it uses.
    A module outside this checkout (a plugin victim) is hashed with the ``victims`` modules it
    imports, not with its own package's other modules."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cache: no source file for module {module!r}")
    first = Path(spec.origin)
    todo, seen = [first], {first}
    while todo:
        current = todo.pop()
        for node in ast.walk(ast.parse(current.read_text())):
            for path in _imported_victim_files(node, current):
                if path not in seen:
                    seen.add(path)
                    todo.append(path)
    return sorted(seen)


def imported_files(source: Path) -> set[Path]:
    """Files of this checkout that one source file imports, at any depth (function-level imports too)."""
    return {f for node in ast.walk(ast.parse(source.read_text())) for f in _statement_files(node, source)}


def _imported_victim_files(node: ast.AST, importer: Path) -> list[Path]:
    """Files under victims/ that one import statement loads (victims/__init__.py only registers aliases)."""
    return [f for f in _statement_files(node, importer)
            if f.parent.is_relative_to(ROOT / "victims") and f != ROOT / "victims" / "__init__.py"]


def _statement_files(node: ast.AST, importer: Path) -> list[Path]:
    """Files of this checkout that one import statement of ``importer`` loads: relative imports
    resolved against its package, ``from package import module`` counted as the module."""
    if isinstance(node, ast.Import):
        dotted = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = importer.parent.relative_to(ROOT).parts if importer.is_relative_to(ROOT) else ()
            base = ".".join([*package[: len(package) - node.level + 1], *([node.module] if node.module else [])])
        dotted = [base, *(f"{base}.{a.name}" for a in node.names)]
    else:
        return []
    files = []
    for name in filter(None, dotted):
        stem = ROOT / name.replace(".", "/")
        files += [f for f in (stem.with_suffix(".py"), stem / "__init__.py") if f.exists()]
    return files


@lru_cache(maxsize=None)
def code_version(module: str | None = None) -> str:
    """Package version plus a hash of the trainer's sources and a victim's (edits invalidate the cache).

    ``module`` (a victim class's ``__module__``): only that victim's sources join the hash, so an
    edit to GRU4Rec keeps the cached SASRec models; without it, every file under victims/ does (the
    run manifest's code version).
    """
    victims = victim_sources(module) if module else sorted((ROOT / "victims").rglob("*.py"))
    h = hashlib.sha256(redteam.__version__.encode())
    for f in [*(ROOT / rel for rel in TRAINER_SOURCES), *victims]:
        if f.exists():
            h.update((f.relative_to(ROOT).as_posix() if f.is_relative_to(ROOT) else f.name).encode())
            h.update(f.read_bytes())
    return f"{redteam.__version__}+{h.hexdigest()[:10]}"


def sequences_checksum(sequences: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for seq in sequences:
        h.update(np.asarray(seq, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


def times_checksum(times: Any) -> str:
    """Hash of an :class:`~redteam.training.EventTimes` (training and validation times)."""
    h = hashlib.sha256()
    for part in (times.train, times.valid or ()):
        for t in part:
            h.update(b"-" if t is None else np.asarray(t, dtype=np.float64).tobytes())
            h.update(b"|")
        h.update(b"#")
    return h.hexdigest()[:16]


def texts_checksum(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(str(text).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def cache_key(*, source: str | None = None, **parts: Any) -> str:
    """Hash of ``parts`` and the code version of ``source`` (the trained class's module; all victims if None)."""
    blob = json.dumps({**parts, "code": code_version(source)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class ModelCache:
    """Directory of cached models: ``root/models/<label>-<key>/``."""

    def __init__(self, root: Path | None, *, enabled: bool = True, read: bool = True) -> None:
        """``enabled=False``: neither read nor write; ``read=False``: retrain and overwrite."""
        self.base = root or default_cache_dir()  # the cache folder (models/, units/, embeddings/ ...)
        self.root = self.base / "models"
        self.enabled = enabled
        self.read = read

    def entry(self, label: str, key: str) -> Path:
        return self.root / f"{label}-{key}"

    def get_or_create(
        self,
        label: str,
        key: str,
        *,
        create: Callable[[], tuple[T, dict[str, Any]]],
        save: Callable[[T, Path], None],
        load: Callable[[Path], T],
    ) -> tuple[T, dict[str, Any], bool]:
        """(object, info, loaded_from_cache). ``create`` returns the object and JSON-able info.

        A corrupt entry (unreadable info.json, or a ``load`` that raises DataError) is reported
        with one warning line on stderr and retrained; the new entry replaces it.
        """
        path = self.entry(label, key)
        if self.enabled and self.read and (path / "info.json").exists():
            try:
                info = self._read_info(path)
                return load(path), info, True
            except DataError as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                sys.stderr.write(f"warning: corrupt cache entry {path} ({reason}); retraining\n")
        obj, info = create()
        if self.enabled:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{label}-", dir=self.root))
            try:
                save(obj, tmp)
                (tmp / "info.json").write_text(json.dumps(info, indent=2, default=str))
                if path.exists():
                    shutil.rmtree(path)
                tmp.rename(path)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return obj, info, False

    @staticmethod
    def _read_info(path: Path) -> dict[str, Any]:
        """An entry's info.json as a mapping; DataError if it cannot be read or parsed."""
        file = path / "info.json"
        try:
            info = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise DataError(f"{file.name}: {exc}") from None
        if not isinstance(info, dict):
            raise DataError(f"{file.name}: holds a {type(info).__name__}, not a mapping")
        return info
