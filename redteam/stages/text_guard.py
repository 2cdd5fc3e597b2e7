"""A text-ranking defense as the paired evaluation uses it: which products survive a text filter
(kind ``text``), and how the ranker is served (kind ``serving``: order averaging wraps it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from redteam.catalog import Product
from redteam.scenario import Scenario
from redteam.stages.defenses import build_defense
from victims.ranker_base import rank_of


class TextGuard:
    """A defense as the evaluation uses it: which products survive, and how the ranker is called."""

    def __init__(self, label: str, defense: Any | None) -> None:
        self.label, self.defense = label, defense
        self._flags: dict[str, bool] = {}
        self.metrics: dict[str, float] = {}

    @property
    def filters(self) -> bool:
        from defenses.base import TextDefense

        return isinstance(self.defense, TextDefense)

    @property
    def serves(self) -> bool:
        from defenses.base import ServingDefense

        return isinstance(self.defense, ServingDefense)

    def calibrate(self, reference: list[str], held_out: list[str], *, source: str) -> None:
        if not self.filters:
            return
        self.defense.calibrate(reference)
        flags = self.flag(held_out)
        self.metrics.update({"fpr": float(np.mean(flags)) if flags else float("nan"), "reference_source": source,
                             "calibration_texts": len(reference), "false_positive_texts": len(held_out),
                             "threshold": float(getattr(self.defense, "threshold", float("nan")))})
        self.false_positive_flags = np.asarray(flags, dtype=np.float64)

    def flag(self, texts: list[str]) -> list[bool]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._flags]
        if missing:
            self._flags.update(zip(missing, (bool(f) for f in self.defense.flag(missing))))
        return [self._flags[t] for t in texts]

    def ranker(self, ranker: Any, rng: np.random.Generator) -> Any:
        return self.defense.wrap(ranker, rng) if self.serves else ranker

    def position(self, ranker: Any, products: list[Product], target_slot: int, request: str,
                 memo: dict[tuple, list[int]] | None = None) -> int:
        """Rank of ``products[target_slot]`` after filtering (filtered out: N + 1).

        ``memo`` shares the rankings of a deterministic ranker between defenses: a filter that
        keeps every product sees exactly what the undefended ranker saw.
        """
        n = len(products)
        keep = list(range(n))
        if self.filters:
            flags = self.flag([p.text() for p in products])
            keep = [i for i in range(n) if not flags[i]]
            if target_slot not in keep:
                return n + 1
        shown = [products[i] for i in keep]
        key = (id(ranker), request, tuple(p.json_line() for p in shown))
        if memo is not None and key in memo:
            order = memo[key]
        else:
            order = ranker.rank(shown, request)
            if memo is not None:
                memo[key] = order
        return rank_of([keep[i] for i in order], target_slot, n)


def build_guards(scenario: Scenario) -> list[TextGuard]:
    """One guard per scenario defense (``none``: no filter, the ranker as is)."""
    return [TextGuard(spec.label(), build_defense(spec)) for spec in scenario.defenses]
