"""Every key a scenario file accepts, with its type, default and meaning, read from the schema.

The schema (:class:`redteam.scenario.Scenario` and its sections) is the only place a key is
declared; this renders it as rows for ``redteam list keys`` and as docs/scenario_keys.md, which a
test keeps equal to :func:`render_markdown` so the reference cannot drift from the code.
Components' own parameters (``victims``, ``attacks``, ``defenses`` entries) are declared by each
component and listed by ``redteam list victims|attacks|defenses``.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
SHORTHANDS = {"victim": "one victim: the same as `victims: [ ... ]`"}


@dataclass(frozen=True)
class KeyRow:
    """One scenario key: its dotted path, type, default and description."""

    key: str
    type: str
    default: str
    description: str


def type_name(annotation: Any) -> str:
    """A short, readable name for a field's annotation (``int | null``, ``'serial' | 'ray'``, ...)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " | ".join(names + (["null"] if type(None) in args else []))
    if origin in (list, tuple, set):
        if not args:
            return "list"
        inner = type_name(args[0])
        return f"list of ({inner})" if " | " in inner else f"list of {inner}"
    if origin is dict:
        return "mapping"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "section"
        if issubclass(annotation, Enum):
            return " | ".join(repr(m.value) for m in annotation)
        return {"str": "text", "bool": "bool", "int": "int", "float": "float"}.get(annotation.__name__, annotation.__name__)
    return str(annotation)


def _field_type(field: FieldInfo) -> str:
    """The annotation's name, with the numeric bounds the field declares (``float, > 0, <= 0.5``)."""
    bounds = [f"{sign} {getattr(m, attr)}" for m in field.metadata for attr, sign in BOUNDS
              if getattr(m, attr, None) is not None]
    return ", ".join([type_name(field.annotation), *bounds])


def yaml_value(value: Any) -> str:
    """A default as it is written in a scenario file (YAML flow style)."""
    if isinstance(value, BaseModel):
        return f"{{name: {value.name}}}" if hasattr(value, "name") else "-"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value else "''"
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    return "-" if isinstance(value, BaseModel) else yaml_value(value)


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _list_of_section(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        if _is_section(item):
            return item
    return None


def key_rows() -> list[KeyRow]:
    """Every key of a scenario file, in the schema's order; nested sections as ``section.key``."""
    from redteam.scenario import ComponentSpec, Scenario

    rows: list[KeyRow] = []
    for name, field in Scenario.model_fields.items():
        annotation = field.annotation
        if _is_section(annotation):
            for key, sub in annotation.model_fields.items():
                rows.append(KeyRow(f"{name}.{key}", _field_type(sub), _default(sub), sub.description or ""))
            continue
        item = _list_of_section(annotation)
        if item is ComponentSpec:
            default = "required (or victim)" if name == "victims" else _default(field)
            rows.append(KeyRow(name, "list of {name, label, parameters}", default,
                               f"{field.description} (parameters: `redteam list {name}`)"))
            continue
        if item is not None:
            rows.append(KeyRow(name, f"list of {name[:-1] if name.endswith('s') else name}", _default(field),
                               field.description or ""))
            for key, sub in item.model_fields.items():
                rows.append(KeyRow(f"{name}[].{key}", _field_type(sub), _default(sub), sub.description or ""))
            continue
        rows.append(KeyRow(name, _field_type(field), _default(field), field.description or ""))
    for key, meaning in SHORTHANDS.items():
        rows.append(KeyRow(key, "{name, label, parameters}", "-", meaning))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """docs/scenario_keys.md: one table per top-level section."""
    lines = [
        "# Scenario keys",
        "",
        "Generated from the schema by `python -m redteam.scenario_reference > docs/scenario_keys.md`",
        "(a test fails when this file and the code disagree; `redteam list keys` prints the same in the",
        "terminal). Any key can be set from the command line with `--set key=value`. The parameters of",
        "each victim, attack and defense are declared by the component: `redteam list victims`,",
        "`redteam list attacks`, `redteam list defenses`.",
    ]
    groups: dict[str, list[KeyRow]] = {"top level": []}
    for row in key_rows():
        head, dot, _ = row.key.partition(".")
        groups.setdefault(head.removesuffix("[]") if dot else "top level", []).append(row)
    for group, rows in groups.items():
        lines += ["", "## top level" if group == "top level" else f"## `{group}`", "",
                  "| key | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{r.key}` | {_cell(r.type)} | `{_cell(r.default)}` | {_cell(r.description)} |" for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
