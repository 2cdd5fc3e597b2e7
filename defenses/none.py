"""The no-defense baseline every defense is compared against."""

from __future__ import annotations

from redteam.params import Params


class NoDefenseParams(Params):
    pass


class NoDefense:
    """No defense: the victim is trained and served as is."""

    alias = "none"
    Params = NoDefenseParams

    def __init__(self, params: NoDefenseParams | None = None) -> None:
        self.params = params or NoDefenseParams()
