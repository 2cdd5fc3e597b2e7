"""Base of every component's declared parameters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Unknown keys are errors, values are validated, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def merged(cls, params: "Params | None", overrides: dict) -> "Params":
        """``params`` (of this or a compatible class) with ``overrides`` applied, validated as ``cls``."""
        given = params.model_dump() if params is not None else {}
        return cls(**{**given, **overrides})
