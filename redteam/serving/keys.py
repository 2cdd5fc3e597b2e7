"""API keys of a served victim: who may query it, and under which name their usage is booked.

Keys come from a file (one ``name: key`` or bare ``key`` per line, ``#`` comments) or from an
environment variable (``name:key`` or ``key`` entries separated by commas). A presented key is
compared with every known key in constant time (:func:`hmac.compare_digest`), so the time an
answer takes does not reveal how much of a guess was right. Keys are never logged: the ledger
and every message name the key's *name* (its own, or ``key-<first 8 hex of its SHA-256>``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from redteam.errors import ConfigError

MIN_KEY_LENGTH = 16


@dataclass(frozen=True)
class KeyRing:
    """Known keys as ``(name, key bytes)`` pairs."""

    entries: tuple[tuple[str, bytes], ...]

    def identify(self, presented: str | None) -> str | None:
        """The name booked for ``presented``, or None for an unknown key (every key is compared)."""
        if not presented:
            return None
        given = presented.encode()
        found = None
        for name, key in self.entries:
            if hmac.compare_digest(given, key) and found is None:
                found = name
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)


def key_name(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_keys(entries: list[str], *, source: str) -> KeyRing:
    """Keys from ``name: key`` / ``key`` entries; one-line ConfigError naming ``source`` on a bad one."""
    seen: dict[str, str] = {}
    pairs = []
    for i, raw in enumerate(entries, 1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, key = entry.partition(":")
        name, key = (name.strip(), key.strip()) if sep else (None, entry)
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(f"{source}: entry {i}: a key must be at least {MIN_KEY_LENGTH} characters")
        name = name or key_name(key)
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"{source}: entry {i}: key names use letters, digits and - _ . only")
        if name in seen:
            raise ConfigError(f"{source}: entry {i}: the key name '{name}' is given twice")
        seen[name] = key
        pairs.append((name, key.encode()))
    if not pairs:
        raise ConfigError(f"{source}: no API key found")
    return KeyRing(tuple(pairs))


def load_keys(*, file: Path | None = None, env_var: str | None = None) -> KeyRing:
    """Keys from ``file`` and/or the environment variable ``env_var`` (at least one must hold some)."""
    entries: list[str] = []
    sources = []
    if file is not None:
        try:
            entries += file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"--keys-file {file}: cannot read ({exc.strerror})") from None
        sources.append(str(file))
    if env_var:
        value = os.environ.get(env_var)
        if value:
            entries += value.split(",")
            sources.append(f"${env_var}")
    if not sources:
        raise ConfigError(f"no API keys: give --keys-file or set ${env_var or 'REDTEAM_API_KEYS'} "
                          "(or pass --no-auth to serve without keys on loopback)")
    return parse_keys(entries, source=" + ".join(sources))
