"""Contract over every registered victim, attack, defense and stage: declared parameters that are
validated up front, a stable identifier recording the configuration, and a stage that fits."""

from __future__ import annotations

import json

import pytest

from redteam.errors import ConfigError
from redteam.params import Params
from redteam.registry import REGISTRY, STAGES, resolve, resolve_stage
from redteam.scenario import ComponentSpec, component_params

ALL = [(kind, alias) for kind in ("victims", "attacks", "defenses") for alias in sorted(REGISTRY[kind])]


@pytest.mark.parametrize(("kind", "alias"), ALL, ids=[f"{k}:{a}" for k, a in ALL])
def test_parameters_are_declared_and_validated_up_front(kind: str, alias: str) -> None:
    cls = resolve(kind, alias)
    assert issubclass(cls.Params, Params), f"{alias}: Params must derive from redteam.params.Params"
    assert cls.__doc__ and cls.__doc__.strip(), f"{alias}: a docstring stating what it is"
    defaults = component_params(kind, ComponentSpec(name=alias), where=f"{kind}[0]")
    assert isinstance(defaults, cls.Params)
    with pytest.raises(ConfigError, match=rf"{kind}\[0\]: no_such_parameter: unknown key"):
        component_params(kind, ComponentSpec(name=alias, no_such_parameter=1), where=f"{kind}[0]")


@pytest.mark.parametrize("alias", sorted(REGISTRY["attacks"]) + sorted(REGISTRY["defenses"]))
def test_identifier_is_stable_and_records_the_configuration(alias: str) -> None:
    kind = "attacks" if alias in REGISTRY["attacks"] else "defenses"
    cls = resolve(kind, alias)
    first, second = cls(cls.Params()).identifier(), cls(cls.Params()).identifier()
    assert first == second and json.loads(json.dumps(first)) == first
    assert first[kind[:-1]] == alias
    for name, value in cls.Params().model_dump(mode="json").items():
        assert first[name] == value, f"{alias}: identifier lacks parameter {name}"


@pytest.mark.parametrize("alias", sorted(REGISTRY["attacks"]))
def test_every_attack_fits_the_stage_of_its_family(alias: str) -> None:
    cls = resolve("attacks", alias)
    stage = resolve_stage(cls.family)
    assert stage.family == cls.family
    for verb in stage.attack_verbs:
        assert callable(getattr(cls, verb, None)), f"{alias}: the {cls.family} stage calls {verb}()"


@pytest.mark.parametrize("alias", sorted(REGISTRY["defenses"]))
def test_every_defense_has_a_kind_a_verb_and_a_stage_that_applies_it(alias: str) -> None:
    from defenses.base import KINDS, Defense, Detector, ServingDefense, TextDefense, TrainingDefense, Watermark

    cls = resolve("defenses", alias)
    assert issubclass(cls, Defense) and cls.kind in KINDS
    base = {"training": TrainingDefense, "detector": Detector, "serving": ServingDefense, "text": TextDefense,
            "watermark": Watermark, "none": Defense}[cls.kind]
    assert issubclass(cls, base), f"{alias}: kind {cls.kind} but not a {base.__name__}"
    if cls.kind == "none":
        return
    stages = [resolve_stage(f) for f in STAGES]
    assert any(cls.kind in s.defense_kinds and s.victim_family == cls.victim_family for s in stages), (
        f"{alias}: no stage applies {cls.kind} defenses to {cls.victim_family}s")


@pytest.mark.parametrize("family", sorted(STAGES))
def test_every_stage_declares_its_contract(family: str) -> None:
    stage = resolve_stage(family)
    assert stage.family == family and stage.success_metric and stage.attack_verbs
    assert stage.victim_family in ("recommender", "ranker")
    assert all(isinstance(p, type) for p in (*stage.produces, *stage.consumes))
