"""``--set a.b.c=value`` overrides on a raw scenario mapping, and pydantic errors as one line
naming the key path (with a did-you-mean for unknown keys)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from redteam.errors import ConfigError
from redteam.registry import did_you_mean, resolve


def apply_override(data: dict[str, Any], item: str) -> None:
    """``a.b.c=value`` (value parsed as YAML); a list index is a number or ``*`` for every entry."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
    parts = key.split(".")
    if parts[0] == "victim" and "victims" in data:
        if len(parts) > 1 and isinstance(data["victims"], list):
            _set_every_victim(data["victims"], parts[1:], parsed, key)
            return
        parts[0] = "victims"
    _set_path(data, parts, parsed, key)


def _set_every_victim(victims: list, parts: list[str], value: Any, key: str) -> None:
    """``victim.P=V`` with several victims: set P on every victim that declares it (``epochs`` does
    not apply to ``popularity``); an error if none does."""
    takers, declared = [], set()
    for entry in victims:
        fields = _declared_params(entry)
        declared |= fields or set()
        if fields is None or parts[0] in fields:
            takers.append(entry)
    if not takers:
        raise ConfigError(f"--set {key}: no victim takes '{parts[0]}'{did_you_mean(parts[0], declared)}")
    for entry in takers:
        _set_path(entry, parts, value, key)


def _declared_params(entry: Any) -> set[str] | None:
    """Parameter names of the victim ``entry`` names, or None when unknown (validation reports it)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return None
    try:
        cls = resolve("victims", entry["name"])
    except ConfigError:
        return None
    return {"name", "label", *cls.Params.model_fields}


def _set_path(node: Any, parts: list[str], value: Any, key: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        targets = range(len(node)) if head == "*" else [_list_index(head, node, key)]
        for i in targets:
            if rest:
                _set_path(node[i], rest, value, key)
            else:
                node[i] = value
        return
    if not isinstance(node, dict):
        raise ConfigError(f"--set {key}: '{head}' is inside a value that is not a mapping")
    if not rest:
        node[head] = value
        return
    child = node.setdefault(head, {})
    _set_path(child, rest, value, key)


def _list_index(head: str, node: list, key: str) -> int:
    if not head.isdigit() or int(head) >= len(node):
        raise ConfigError(f"--set {key}: '{head}' is not an index of a list with {len(node)} entries")
    return int(head)


def describe_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """The first error as 'key.path: message', with a did-you-mean for unknown keys."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    path = ".".join(loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        options = _fields_at(model, err["loc"][:-1])
        return f"{path}: unknown key{did_you_mean(loc[-1], options)}"
    if err["type"] == "missing":
        return f"{path}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if err["type"] not in ("value_error",) and not isinstance(got, (dict, list)):
        msg += f" (got {got!r})"
    return f"{path}: {msg}"


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the nested model that ``loc`` points into (for suggestions)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ()) or ()
        candidates = [annotation, *args]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))
