"""docs/scenario_keys.md is the schema, rendered: complete, described, and with the true defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from redteam.scenario import build_scenario
from redteam.scenario_reference import key_rows, render_markdown, type_name, yaml_value

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenario_keys.md"
MINIMAL = {"name": "keys", "victim": {"name": "popularity"}}


def test_the_committed_reference_is_the_rendered_schema() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/scenario_keys.md is stale: python -m redteam.scenario_reference > docs/scenario_keys.md")


def test_every_key_has_a_meaning_and_every_section_key_is_listed() -> None:
    from redteam.scenario import Scenario

    rows = key_rows()
    assert all(r.description for r in rows), [r.key for r in rows if not r.description]
    keys = {r.key for r in rows}
    for name, field in Scenario.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        assert ({f"{name}.{k}" for k in sub} <= keys) if sub else (name in keys), name


SETTABLE = [r for r in key_rows() if "[]" not in r.key and not r.default.startswith("required") and r.default != "-"]


@pytest.mark.parametrize("row", SETTABLE, ids=[r.key for r in SETTABLE])
def test_each_documented_default_given_back_through_set_changes_nothing(row) -> None:
    default = build_scenario(MINIMAL)
    again = build_scenario(MINIMAL, [f"{row.key}={row.default}"])
    assert again.model_dump(mode="json") == default.model_dump(mode="json")


def test_a_wrong_documented_default_would_be_caught() -> None:
    assert build_scenario(MINIMAL, ["api.topk=99"]).model_dump(mode="json") != build_scenario(MINIMAL).model_dump(mode="json")


def test_type_names_read_as_written() -> None:
    from typing import Literal

    assert type_name(int | None) == "int | null"
    assert type_name(Literal["serial", "ray"]) == "'serial' | 'ray'"
    assert type_name(list[int] | None) == "list of int | null"
    assert type_name(list[str | int] | None) == "list of (text | int) | null"


def test_list_keys_prints_every_key(run_cli) -> None:
    result = run_cli("list", "keys")
    assert result.code == 0, result
    for row in key_rows():
        assert row.key in result.stdout, row.key


def test_bounds_and_yaml_defaults() -> None:
    rows = {r.key: r for r in key_rows()}
    assert rows["poisoning.target_share"].type == "float, > 0, <= 0.5"
    assert rows["output.formats"].default == "[json]" and rows["defenses"].default == "[{name: none}]"
    assert yaml_value("") == "''" and yaml_value(None) == "null" and yaml_value(False) == "false"
