"""Holes in the black box found by review, each closed: an attack writing into its few-shot data,
sending item ids outside the catalog, a recipe emitting malformed fakes (exit 3, never the
"gate failed" code 1), and defenses paired with a stage that cannot apply them (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from attacks.base import Attack
from redteam.registry import REGISTRY

TINY = {"name": "holes", "seed": 3, "dataset": {"name": "synthetic", "users": 120, "items": 60},
        "victim": {"name": "popularity"}, "api": {"topk": 20, "budget": 50}, "eval": {"k": [10], "bootstrap": 0},
        "runtime": {"threads": 1}}


class BadIds(Attack):
    """Test attack: queries an item id past the catalog."""

    alias = "test.bad_ids"
    family = "extraction"

    def query_allowance(self, knowledge):
        return 10

    def collect(self, knowledge, *, max_queries, progress=None):
        knowledge.api.topk([[1, knowledge.n_items + 7]])

    def train_surrogate(self, knowledge, transcript):
        raise AssertionError("never reached")


class BadFakes(Attack):
    """Test recipe: fills every slot with the padding id 0."""

    alias = "test.bad_fakes"
    family = "poisoning"

    def craft(self, knowledge, plan):
        return [np.zeros(len(t), dtype=np.int64) for t in plan.templates]


@pytest.fixture
def registered(monkeypatch):
    for cls in (BadIds, BadFakes):
        monkeypatch.setitem(REGISTRY["attacks"], cls.alias, f"{__name__}:{cls.__name__}")


def run(run_cli, tmp_path: Path, **changes):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return run_cli("run", path, "--out", tmp_path / "runs", "-q")


@pytest.mark.parametrize(("attack", "message"), [
    ("test.bad_ids", "attacks.test.bad_ids against popularity (seed 3, attacker seed 3): InvalidQuery: history 0: item id 67"),
    ("test.bad_fakes", "attacks.test.bad_fakes: fake profile 0 breaks the plan"),
])
def test_a_component_that_breaks_its_contract_exits_3_and_writes_no_run(attack, message, registered, run_cli,
                                                                        tmp_path: Path) -> None:
    result = run(run_cli, tmp_path, attacks=[{"name": attack}])
    assert result.code == 3, result
    assert "internal error: ComponentError: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    trace = Path(result.stderr.rsplit("(traceback: ", 1)[1].rstrip(")\n"))
    assert trace.is_file() and "Traceback" in trace.read_text()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(("attacks", "defense", "message"), [
    ([{"name": "extraction.random"}], "isolation_forest",
     "defenses[1].name: 'isolation_forest' is a detector defense and no stage of this scenario applies one "
     "(extraction applies serving, watermark)"),
    ([{"name": "extraction.random"}], "apr", "'apr' is a training defense and no stage of this scenario applies one"),
    ([], "apr", "(it has no attack)"),
    ([{"name": "poisoning.random"}], "perplexity_filter", "'perplexity_filter' does not defend sequential recommenders"),
])
def test_a_defense_without_a_stage_to_act_on_is_refused_at_validation(attacks, defense, message, run_cli,
                                                                       tmp_path: Path) -> None:
    result = run(run_cli, tmp_path, attacks=attacks, defenses=[{"name": "none"}, {"name": defense}])
    assert result.code == 2, result
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_attacks_get_read_only_copies_of_their_few_shot_data(tiny_dataset, tiny_split) -> None:
    from redteam.cache import ModelCache
    from redteam.events import EventLog
    from redteam.progress import Reporter
    from redteam.scenario import ComponentSpec, build_scenario
    from redteam.stages.context import RunContext, Target

    scenario = build_scenario({**TINY, "attacks": [{"name": "extraction.random"}]})
    ctx = RunContext(scenario=scenario, dataset=tiny_dataset, split=tiny_split, test_users=np.arange(5),
                     cache=ModelCache(None, enabled=False), events=EventLog(), reporter=Reporter(None, enabled=False),
                     few_shot_users=np.array([0, 1, 2]))
    before = [s.copy() for s in tiny_split.train[:3]]
    knowledge = ctx.knowledge(Target(ComponentSpec(name="popularity"), 0, None, None), "x", 0, api=None, popularity=True)
    for seq in (*knowledge.few_shot, knowledge.item_popularity):
        assert not seq.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            seq[0] = 99
    assert all(not np.shares_memory(a, b) for a, b in zip(knowledge.few_shot, tiny_split.train[:3]))
    assert all(np.array_equal(a, b) for a, b in zip(tiny_split.train[:3], before))
