"""Stages are ordered from what they produce and consume, never by family name."""

from __future__ import annotations

import pytest

from redteam.registry import resolve_stage
from redteam.stages.base import order_stages


class _Product:
    pass


def _stage(name: str, produces=(), consumes=()):
    return type(name, (), {"family": name, "produces": tuple(produces), "consumes": tuple(consumes)})


def test_producers_run_before_consumers_whatever_the_scenario_order() -> None:
    extraction, poisoning = resolve_stage("extraction"), resolve_stage("poisoning")
    assert order_stages([poisoning, extraction]) == [extraction, poisoning]
    assert order_stages([extraction, poisoning]) == [extraction, poisoning]


def test_independent_stages_keep_their_order_and_a_cycle_is_refused() -> None:
    a, b, c = _stage("a"), _stage("b", consumes=[_Product]), _stage("c", produces=[_Product])
    assert order_stages([a, b, c]) == [a, c, b]
    loop = [_stage("x", produces=[_Product], consumes=[int]), _stage("y", produces=[int], consumes=[_Product])]
    with pytest.raises(RuntimeError, match="cycle"):
        order_stages(loop)
