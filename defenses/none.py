"""The no-defense baseline every defense is compared against."""

from __future__ import annotations

from typing import ClassVar

from defenses.base import Defense, DefenseKind
from redteam.params import Params


class NoDefenseParams(Params):
    pass


class NoDefense(Defense):
    """No defense: the victim is trained and served as is (every stage accepts it)."""

    alias: ClassVar[str] = "none"
    kind: ClassVar[DefenseKind] = "none"
    family: ClassVar[str] = "none"
    victim_family: ClassVar[str] = "any"
    Params = NoDefenseParams
