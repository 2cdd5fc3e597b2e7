"""Product catalogs and shopper requests: what an LLM or embedding ranker ranks.

A :class:`Product` is a name plus ordered text fields (description, price, rating, ...). A
strategic text sequence (STS) is appended to the end of the target product's *last* text field
(Kumar & Lakkaraju, 2024). A :class:`Catalog` is a pool of products plus shopper requests written
for it; the scenario splits the requests into optimisation and held-out sets.

Two renderings, one per ranker type:
- :meth:`Product.json_line`: one JSON object per line, the paper's prompt format (causal LMs);
- :meth:`Product.text`: ``"<name>. <field>: <value>. ..."``, the document a bi-encoder embeds.
Both end with the last field's value, so the STS is the last thing in the product's text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Product:
    """One catalog entry; ``fields`` keeps its order (the last one receives the STS)."""

    name: str
    fields: tuple[tuple[str, str], ...] = ()
    source_id: str = ""

    @classmethod
    def of(cls, name: str, source_id: str = "", **fields: str) -> "Product":
        return cls(name=name, fields=tuple((k, str(v)) for k, v in fields.items()), source_id=source_id)

    def with_suffix(self, suffix: str) -> "Product":
        """The same product with ``suffix`` appended (after one space) to its last text field."""
        if not suffix:
            return self
        if not self.fields:
            return replace(self, fields=(("description", suffix),))
        *head, (key, value) = self.fields
        joined = f"{value} {suffix}" if value else suffix
        return replace(self, fields=(*head, (key, joined)))

    def json_line(self) -> str:
        """``{"Name": ..., "Description": ..., ...}`` on one line (keys capitalised as in the paper)."""
        record = {"Name": self.name, **{k.replace("_", " ").capitalize(): v for k, v in self.fields}}
        return json.dumps(record, ensure_ascii=False)

    def text(self) -> str:
        """The document a bi-encoder embeds: name, then ``key: value`` fields, in order."""
        parts = [self.name] + [f"{k.replace('_', ' ')}: {v}" for k, v in self.fields if v]
        return ". ".join(parts)


@dataclass(frozen=True)
class Catalog:
    """A product pool with shopper requests written for it."""

    name: str
    products: tuple[Product, ...]
    requests: tuple[str, ...]
    source: str = "builtin"
    info: dict[str, str] = field(default_factory=dict)

    def index(self, name: str) -> int:
        """Position of the product called ``name`` (exact match, then case-insensitive)."""
        for i, p in enumerate(self.products):
            if p.name == name:
                return i
        lowered = name.casefold()
        for i, p in enumerate(self.products):
            if p.name.casefold() == lowered:
                return i
        raise KeyError(name)

    def names(self) -> list[str]:
        return [p.name for p in self.products]


def with_sts(products: Sequence[Product], target: int, sts: str) -> list[Product]:
    """A copy of ``products`` where product ``target`` carries ``sts``."""
    out = list(products)
    out[target] = out[target].with_suffix(sts)
    return out
