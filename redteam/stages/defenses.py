"""Building the scenario's defenses: a registered class per ``defenses[i].name``, its parameters
validated against its declared ``Params`` (``label`` and ``attacker_seeds`` are the runner's)."""

from __future__ import annotations

from typing import Any

from redteam.scenario import ComponentSpec, component_params


def build_defense(spec: ComponentSpec) -> Any | None:
    """The defense object, or None for ``none`` (the undefended baseline)."""
    from redteam.registry import resolve

    if spec.name == "none":
        return None
    cls = resolve("defenses", spec.name, where="defenses")
    return cls(component_params("defenses", spec, where=f"defenses.{spec.label()}"))
