"""A small JSON path: where a recommender's response keeps its ids and scores.

The subset promptfoo's and garak's users write for a response field: ``$`` (the document),
``.name`` or ``['name']`` (a member), ``[i]`` (an element, negative from the end) and ``[*]``
(every element, the rest of the path applied to each). ``$.data.recommendations[*].item_id``
reads the ids out of a list of objects; ``$.items`` reads a list of lists.
"""

from __future__ import annotations

import re
from typing import Any

from redteam.errors import ConfigError

WILDCARD = object()
_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(-?\d+)\]|\[\*\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_path(path: str) -> tuple[Any, ...]:
    """The steps of ``path``: member names (str), indices (int) and :data:`WILDCARD`."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ConfigError(f"response path {path!r}: must start with '$'")
    steps: list[Any] = []
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise ConfigError(f"response path {path!r}: cannot read it from character {pos + 1} ({path[pos:]!r}); "
                              "use .name, ['name'], [index] or [*]")
        name, index, quoted, dquoted = match.groups()
        if index is not None:
            steps.append(int(index))
        elif name is not None or quoted is not None or dquoted is not None:
            steps.append(next(s for s in (name, quoted, dquoted) if s is not None))
        else:
            steps.append(WILDCARD)
        pos = match.end()
    return tuple(steps)


def extract(document: Any, steps: tuple[Any, ...]) -> Any:
    """The value at ``steps`` in ``document``; :class:`LookupError` naming the step that is missing."""
    return _walk(document, steps, "$")


def _walk(node: Any, steps: tuple[Any, ...], where: str) -> Any:
    if not steps:
        return node
    step, rest = steps[0], steps[1:]
    if step is WILDCARD:
        if not isinstance(node, list):
            raise LookupError(f"{where} is not a list")
        return [_walk(child, rest, f"{where}[{i}]") for i, child in enumerate(node)]
    if isinstance(step, int):
        if not isinstance(node, list) or not -len(node) <= step < len(node):
            raise LookupError(f"{where}[{step}] does not exist")
        return _walk(node[step], rest, f"{where}[{step}]")
    if not isinstance(node, dict) or step not in node:
        raise LookupError(f"{where}.{step} does not exist")
    return _walk(node[step], rest, f"{where}.{step}")
