"""Errors the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class RedteamError(Exception):
    """A usage, configuration or data problem: the message names the key path or file."""


class ConfigError(RedteamError):
    """An invalid scenario file, override or component parameter."""


class DataError(RedteamError):
    """A missing, unreadable or malformed data file."""


class BudgetExceeded(RedteamError):
    """A black-box API query would go past the scenario's query budget."""
