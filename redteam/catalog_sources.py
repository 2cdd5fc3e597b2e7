"""Where STS catalogs come from: built-in paper-style pools, Amazon Scientific pools, user files.

Paper-style catalogs (``redteam/data/catalogs/<name>.json``) and user catalog files share one
JSON schema::

    {"name": str,                                    # optional in user files: default file stem
     "description": str,                             # optional
     "products": [{"name": str,                      # >= 2 products, unique non-empty names
                   "fields": {key: str, ...}}, ...], # >= 1 field; the order is kept
     "requests": [str, ...]}                         # >= 2 non-empty shopper requests

Field order matters: the STS is appended to the product's *last* field. The built-in catalogs
(``coffee_machines``, ``headphones``, ``running_shoes``) all use ``description``, ``price``,
``rating``, one category spec (``capacity``, ``battery_life``, ``weight``), then ``ideal_for``.
All products and requests in them are original, fictional text written for this project.

Real-text catalogs (``redteam/data/catalogs/scientific_<slug>.json``) hold only requests::

    {"name": "scientific_<slug>", "description": str, "leaf": "<category leaf>", "requests": [...]}

Their products are read from ``<data_dir>/amazon-scientific/Scientific.text`` (a header line,
then ``asin <TAB> "<title>. <category path>. <brand>. "``). Parsing rules:

- the category path always starts with ``Industrial & Scientific``, so the title is the text
  before the first ``". Industrial & Scientific "`` (titles may themselves contain ``". "``,
  e.g. ``"10.1 Oz. Tube"``); the path runs to the next ``". "``; the brand is the rest, without
  its trailing period. Items without the marker have no category and are never selected;
- an item belongs to a leaf when its path equals the leaf or *ends with* ``" " + leaf``, so
  ``3D Printers`` does not select ``... 3D Printer Parts & Accessories ...``;
- titles are whitespace-normalised, with the HTML residue ``/>`` removed; items whose title is
  then empty or the bare root category ``Industrial & Scientific`` are dropped, and so are later
  items repeating an earlier title (the first one is kept);
- a product's fields are ``category`` (the full path) then ``brand`` (the last field). When the
  brand is empty or ``Unknown`` the product has only ``category``, which then receives the STS.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from redteam.catalog import Catalog, Product
from redteam.errors import ConfigError, DataError
from redteam.registry import did_you_mean

DATA_DIR_ENV = "REDTEAM_DATA_DIR"
SCIENTIFIC_PREFIX = "scientific_"
SCIENTIFIC_TEXT = Path("amazon-scientific") / "Scientific.text"
CATEGORY_ROOT = "Industrial & Scientific"
MIN_PRODUCTS = 2
MIN_REQUESTS = 2

_CATALOG_KEYS = ("name", "description", "products", "requests")
_PRODUCT_KEYS = ("name", "fields", "source_id")
_REQUESTS_FILE_KEYS = ("name", "description", "leaf", "requests")
_EMPTY_BRANDS = frozenset({"", "unknown"})


@dataclass(frozen=True)
class ScientificItem:
    """One parsed line of ``Scientific.text``."""

    asin: str
    title: str
    category: str
    brand: str


# --------------------------------------------------------------------------------------------
# Public API


def builtin_catalogs() -> list[str]:
    """Names of the packaged catalogs: paper-style ones and ``scientific_<slug>`` ones."""
    return sorted(entry.name.removesuffix(".json") for entry in _packaged_files())


def load_catalog(
    name: str,
    *,
    data_dir: Path | str | None = None,
    max_products: int | None = None,
    seed: int = 0,
) -> Catalog:
    """A packaged catalog by name.

    ``scientific_<slug>`` catalogs read their products from ``data_dir`` (the folder holding
    ``amazon-scientific/``; default ``$REDTEAM_DATA_DIR``). With ``max_products`` smaller than
    the pool, a random subset drawn with ``np.random.default_rng(seed)`` is kept, in pool order.
    """
    _check_max_products(max_products)
    record, where = _read_packaged(name)
    if name.startswith(SCIENTIFIC_PREFIX):
        catalog = _scientific_catalog(record, where=where, default_name=name, data_dir=_resolve_data_dir(data_dir))
    else:
        catalog = _catalog_from_record(record, where=where, default_name=name, source="builtin")
    return subsample(catalog, max_products=max_products, seed=seed)


def load_catalog_file(path: Path | str) -> Catalog:
    """A user's catalog JSON file (the schema in this module's docstring), validated."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: catalog file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read catalog file: {_first_line(exc)}") from None
    record = _parse_json(text, where=str(path))
    catalog = _catalog_from_record(record, where=str(path), default_name=path.stem, source="file")
    return replace(catalog, info={**catalog.info, "file": str(path)})


def subsample(catalog: Catalog, *, max_products: int | None, seed: int = 0) -> Catalog:
    """``catalog`` with at most ``max_products`` products: a seeded subset kept in catalog order."""
    _check_max_products(max_products)
    if max_products is None or len(catalog.products) <= max_products:
        return catalog
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(catalog.products), size=max_products, replace=False))
    products = tuple(catalog.products[i] for i in keep)
    return replace(catalog, products=products, info={**catalog.info, "subset_seed": str(seed)})


def read_scientific_items(path: Path) -> list[ScientificItem]:
    """Every item of a ``Scientific.text`` file, parsed (titles not yet filtered)."""
    items = []
    with path.open(encoding="utf-8") as fh:
        next(fh, None)
        for lineno, line in enumerate(fh, start=2):
            if not line.strip():
                continue
            asin, tab, text = line.rstrip("\r\n").partition("\t")
            if not tab:
                raise DataError(f"{path} line {lineno}: expected 'asin <TAB> text'")
            items.append(ScientificItem(asin.strip(), *split_scientific_text(text)))
    return items


def split_scientific_text(text: str) -> tuple[str, str, str]:
    """``(title, category path, brand)`` of one item text; see the module docstring."""
    marker = f". {CATEGORY_ROOT} "
    cut = text.find(marker)
    if cut < 0:
        title, _, rest = text.partition(". ")
        category, brand = "", rest.removeprefix(". ")
    else:
        title = text[:cut]
        category, _, brand = text[cut + 2 :].partition(". ")
    return clean_title(title), category.strip(), brand.strip().removesuffix(".").strip()


def clean_title(title: str) -> str:
    """Whitespace-normalised title without HTML residue; ``""`` for placeholder titles."""
    words = [word for word in title.split() if word != "/>"]
    joined = " ".join(words).removesuffix("/>").strip()
    return "" if joined == CATEGORY_ROOT else joined


def leaf_matches(category: str, leaf: str) -> bool:
    """Whether a category path ends with the leaf (whole words)."""
    return category == leaf or category.endswith(" " + leaf)


def scientific_products(items: list[ScientificItem], leaf: str, *, any_leaf: bool = False) -> list[Product]:
    """Products under ``leaf`` (every categorised item with ``any_leaf``), in file order: titled,
    first of each title only."""
    products: list[Product] = []
    seen: set[str] = set()
    for item in items:
        if not item.title or item.title in seen or not (any_leaf or leaf_matches(item.category, leaf)):
            continue
        seen.add(item.title)
        products.append(scientific_product(item))
    return products


def scientific_product(item: ScientificItem) -> Product:
    """``Product(title, category, brand)``; no brand field when the brand is empty or unknown."""
    fields = [("category", item.category)]
    if item.brand.casefold() not in _EMPTY_BRANDS:
        fields.append(("brand", item.brand))
    return Product(name=item.title, fields=tuple(fields), source_id=item.asin)


def reference_products(*, data_dir: Path | str | None = None, exclude: str = "") -> list[Product]:
    """Real product texts a text defense calibrates on and measures false positives against.

    Every titled Amazon Scientific item when the data is found (``data_dir`` or
    ``$REDTEAM_DATA_DIR``), else every paper-style built-in catalog's products; the catalog named
    ``exclude`` (a built-in name, or a ``scientific_<slug>`` whose leaf is left out) is skipped.
    """
    try:
        text_path = _resolve_data_dir(data_dir) / SCIENTIFIC_TEXT
    except ConfigError:
        text_path = None
    if text_path is not None and text_path.is_file():
        leaf = ""
        if exclude.startswith(SCIENTIFIC_PREFIX) and exclude in builtin_catalogs():
            leaf = str(_read_packaged(exclude)[0].get("leaf", ""))
        items = [i for i in read_scientific_items(text_path)
                 if i.category and not (leaf and leaf_matches(i.category, leaf))]
        return scientific_products(items, CATEGORY_ROOT, any_leaf=True)
    out: list[Product] = []
    for name in builtin_catalogs():
        if name != exclude and not name.startswith(SCIENTIFIC_PREFIX):
            out.extend(load_catalog(name).products)
    return out


# --------------------------------------------------------------------------------------------
# Packaged files


def _packaged_dir() -> Traversable:
    return resources.files("redteam") / "data" / "catalogs"


def _packaged_files() -> list[Traversable]:
    return [entry for entry in _packaged_dir().iterdir() if entry.name.endswith(".json")]


def _read_packaged(name: str) -> tuple[dict[str, Any], str]:
    known = builtin_catalogs()
    if name not in known:
        raise ConfigError(f"catalog.name: unknown catalog '{name}'{did_you_mean(name, known)}; known: {', '.join(known)}")
    entry = _packaged_dir() / f"{name}.json"
    where = f"built-in catalog {entry.name}"
    return _parse_json(entry.read_text(encoding="utf-8"), where=where), where


def _parse_json(text: str, *, where: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a JSON object at the top level, got {_json_type(record)}")
    return record


# --------------------------------------------------------------------------------------------
# Validation (one-line ConfigErrors naming the file and the key)


def _catalog_from_record(record: dict[str, Any], *, where: str, default_name: str, source: str) -> Catalog:
    _reject_unknown_keys(record, _CATALOG_KEYS, where=where, prefix="")
    name = _optional_string(record, "name", where=where) or default_name
    description = _optional_string(record, "description", where=where)
    products = _products(record.get("products"), where=where)
    requests = _requests(record.get("requests"), where=where)
    info = {"pool_size": str(len(products)), "description": description}
    return Catalog(name=name, products=products, requests=requests, source=source, info=info)


def _products(value: Any, *, where: str) -> tuple[Product, ...]:
    if value is None:
        raise ConfigError(f"{where}: products: required")
    if not isinstance(value, list):
        raise ConfigError(f"{where}: products: must be a list of objects, got {_json_type(value)}")
    if len(value) < MIN_PRODUCTS:
        raise ConfigError(f"{where}: products: at least {MIN_PRODUCTS} products required, got {len(value)}")
    products = tuple(_product(item, where=where, key=f"products[{i}]") for i, item in enumerate(value))
    _reject_duplicate_names(products, where=where)
    return products


def _product(item: Any, *, where: str, key: str) -> Product:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: {key}: must be an object, got {_json_type(item)}")
    _reject_unknown_keys(item, _PRODUCT_KEYS, where=where, prefix=f"{key}.")
    name = item.get("name")
    if name is None:
        raise ConfigError(f"{where}: {key}.name: required")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: {key}.name: must be a non-empty string")
    source_id = _optional_string(item, "source_id", where=where, prefix=f"{key}.")
    return Product(name=name.strip(), fields=_fields(item.get("fields"), where=where, key=f"{key}.fields"), source_id=source_id)


def _fields(value: Any, *, where: str, key: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        raise ConfigError(f"{where}: {key}: required (an object of text fields; the last one receives the STS)")
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: must be an object of text fields, got {_json_type(value)}")
    if not value:
        raise ConfigError(f"{where}: {key}: at least one field required")
    for field_key, field_value in value.items():
        if not isinstance(field_value, str):
            raise ConfigError(f"{where}: {key}.{field_key}: must be a string, got {_json_type(field_value)}")
    return tuple(value.items())


def _requests(value: Any, *, where: str) -> tuple[str, ...]:
    if value is None:
        raise ConfigError(f"{where}: requests: required")
    if not isinstance(value, list):
        raise ConfigError(f"{where}: requests: must be a list of strings, got {_json_type(value)}")
    for i, request in enumerate(value):
        if not isinstance(request, str) or not request.strip():
            raise ConfigError(f"{where}: requests[{i}]: must be a non-empty string")
    if len(value) < MIN_REQUESTS:
        raise ConfigError(f"{where}: requests: at least {MIN_REQUESTS} shopper requests required, got {len(value)}")
    return tuple(request.strip() for request in value)


def _reject_duplicate_names(products: tuple[Product, ...], *, where: str) -> None:
    first_index: dict[str, int] = {}
    for i, product in enumerate(products):
        if product.name in first_index:
            raise ConfigError(
                f"{where}: products[{i}].name: duplicate '{product.name}' (same as products[{first_index[product.name]}])"
            )
        first_index[product.name] = i


def _reject_unknown_keys(record: dict[str, Any], allowed: tuple[str, ...], *, where: str, prefix: str) -> None:
    for key in record:
        if key not in allowed:
            raise ConfigError(
                f"{where}: {prefix}{key}: unknown key{did_you_mean(str(key), allowed)}; allowed: {', '.join(allowed)}"
            )


def _optional_string(record: dict[str, Any], key: str, *, where: str, prefix: str = "") -> str:
    value = record.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {prefix}{key}: must be a string, got {_json_type(value)}")
    return value.strip()


def _check_max_products(max_products: int | None) -> None:
    if max_products is None:
        return
    if isinstance(max_products, bool) or not isinstance(max_products, int) or max_products < MIN_PRODUCTS:
        raise ConfigError(f"catalog.max_products: must be an integer >= {MIN_PRODUCTS}, got {max_products!r}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Amazon Scientific


def _resolve_data_dir(data_dir: Path | str | None) -> Path:
    if data_dir is None:
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        if not env:
            raise ConfigError(
                f"catalog.data_dir: not set (nor ${DATA_DIR_ENV}); it must be the folder holding {SCIENTIFIC_TEXT}"
            )
        data_dir = env
    return Path(data_dir).expanduser()


def _scientific_catalog(record: dict[str, Any], *, where: str, default_name: str, data_dir: Path) -> Catalog:
    _reject_unknown_keys(record, _REQUESTS_FILE_KEYS, where=where, prefix="")
    leaf = _optional_string(record, "leaf", where=where)
    if not leaf:
        raise ConfigError(f"{where}: leaf: required (the end of the category path)")
    text_path = data_dir / SCIENTIFIC_TEXT
    if not text_path.is_file():
        raise ConfigError(f"catalog.data_dir: {text_path} not found (set catalog.data_dir or ${DATA_DIR_ENV})")
    products = scientific_products(read_scientific_items(text_path), leaf)
    if len(products) < MIN_PRODUCTS:
        raise DataError(f"{text_path}: only {len(products)} titled items under the category leaf '{leaf}'")
    info = {
        "description": _optional_string(record, "description", where=where),
        "leaf": leaf,
        "pool_size": str(len(products)),
        "data_file": str(text_path),
    }
    name = _optional_string(record, "name", where=where) or default_name
    requests = _requests(record.get("requests"), where=where)
    return Catalog(name=name, products=tuple(products), requests=requests, source="amazon-scientific", info=info)
