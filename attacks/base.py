"""Base classes of attack families: one verb per family, declared parameters checked up front.

Each concrete attack is one short file: its docstring cites the paper and states the threat
model; its ``Params`` (pydantic, unknown keys rejected) are what the scenario may set and what
``redteam list attacks`` shows.
"""

from __future__ import annotations

from typing import Any, ClassVar

from redteam.params import Params


class Attack:
    """Common shape: ``alias``, ``family``, ``Params``; built from validated params only."""

    alias: ClassVar[str]
    family: ClassVar[str]
    Params: ClassVar[type[Params]] = Params

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        self.params = self.Params.merged(params, overrides)
        self.diagnostics: dict[str, Any] = {}  # what the last run learned about itself (JSON-able)

    def identifier(self) -> dict[str, Any]:
        """What produced a result: the alias and every parameter value."""
        return {"attack": self.alias, "family": self.family, **self.params.model_dump(mode="json")}
