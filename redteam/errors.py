"""Errors and the exit code each one ends a run with.

* :class:`RedteamError` (and its subclasses): a usage, configuration or data problem; the CLI
  prints one line naming the key path, file or URL and exits 2, with nothing written.
* :class:`InternalError` (and any other exception): a bug, in the engine or in a component that
  broke its contract (an attack that sends item ids outside the catalog, a recipe that emits
  malformed fake profiles); the CLI prints a short message and the path of a traceback file and
  exits 3, so CI never reads a crash as a failed gate (exit 1).
"""

from __future__ import annotations


class RedteamError(Exception):
    """A usage, configuration or data problem: the message names the key path or file."""


class ConfigError(RedteamError):
    """An invalid scenario file, override or component parameter."""


class DataError(RedteamError):
    """A missing, unreadable or malformed data file."""


class BudgetExceeded(RedteamError):
    """A black-box API query would go past the scenario's query budget."""


class RemoteError(RedteamError):
    """A recommender reached over HTTP failed or answered something unusable: the message names
    the URL and the status (exit 2: the remote service, not this testbed, is at fault)."""


class InternalError(Exception):
    """Not the user's input: the engine or a component failed (exit 3)."""


class ComponentError(InternalError):
    """A victim, attack or defense broke its contract; the message names it (``attacks.my-attack: ...``)."""


class InvalidQuery(ValueError):
    """A query the endpoint refuses: item ids outside 1..N, k out of range, a malformed history."""
