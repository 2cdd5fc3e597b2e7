"""Catalog sources for the STS attack: built-in pools, user files, Amazon Scientific pools."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from redteam.catalog import Catalog, with_sts
from redteam.catalog_sources import (
    builtin_catalogs,
    load_catalog,
    load_catalog_file,
    read_scientific_items,
    split_scientific_text,
    subsample,
)
from redteam.errors import ConfigError

PAPER_STYLE = [name for name in builtin_catalogs() if not name.startswith("scientific_")]
SCIENTIFIC = [name for name in builtin_catalogs() if name.startswith("scientific_")]
SUFFIX = "zq interlude !! xx"


def _packaged_record(name: str) -> dict:
    return json.loads((resources.files("redteam") / "data" / "catalogs" / f"{name}.json").read_text(encoding="utf-8"))


def _assert_no_request_names_a_product(catalog: Catalog) -> None:
    for request in catalog.requests:
        lowered = request.casefold()
        for product in catalog.products:
            assert product.name.casefold() not in lowered, (request, product.name)


# --------------------------------------------------------------------------------------------
# Built-in paper-style catalogs


def test_the_expected_catalogs_are_packaged():
    assert {"coffee_machines", "headphones", "running_shoes"} <= set(PAPER_STYLE)
    assert len(SCIENTIFIC) >= 4


@pytest.mark.parametrize("name", PAPER_STYLE)
def test_paper_style_catalog_loads_with_enough_products_and_requests(name):
    catalog = load_catalog(name)
    assert catalog.name == name == _packaged_record(name)["name"]
    assert catalog.source == "builtin"
    assert len(catalog.products) >= 10
    assert len(set(catalog.names())) == len(catalog.products)
    assert len(set(catalog.requests)) == len(catalog.requests) >= 24
    assert catalog.info["pool_size"] == str(len(catalog.products))


@pytest.mark.parametrize("name", PAPER_STYLE)
def test_no_request_mentions_a_product_or_brand(name):
    catalog = load_catalog(name)
    _assert_no_request_names_a_product(catalog)
    brands = {product.name.split()[0].casefold() for product in catalog.products}
    for request in catalog.requests:
        assert not brands & set(re.findall(r"[\w-]+", request.casefold())), request


@pytest.mark.parametrize("name", PAPER_STYLE)
def test_fields_follow_the_documented_order_with_ideal_for_last(name):
    catalog = load_catalog(name)
    key_orders = {tuple(key for key, _ in product.fields) for product in catalog.products}
    assert len(key_orders) == 1
    (keys,) = key_orders
    assert len(keys) == 5
    assert keys[:3] == ("description", "price", "rating")
    assert keys[-1] == "ideal_for"
    for product in catalog.products:
        values = dict(product.fields)
        assert re.fullmatch(r"\$[\d,]+", values["price"]), values["price"]
        assert re.fullmatch(r"\d\.\d stars", values["rating"]), values["rating"]
        assert all(value.strip() for value in values.values())


def test_with_suffix_puts_the_sts_at_the_end_of_the_last_field_and_both_renderings():
    product = load_catalog("coffee_machines").products[0]
    attacked = product.with_suffix(SUFFIX)
    assert attacked.fields[:-1] == product.fields[:-1]
    assert attacked.fields[-1] == ("ideal_for", f"{product.fields[-1][1]} {SUFFIX}")
    assert json.loads(attacked.json_line())["Ideal for"].endswith(SUFFIX)
    assert attacked.json_line().endswith(f'{SUFFIX}"}}')
    assert attacked.text().endswith(SUFFIX)
    assert SUFFIX not in product.json_line() + product.text()


def test_with_sts_changes_only_the_target():
    products = load_catalog("headphones").products
    attacked = with_sts(products, 3, SUFFIX)
    assert [p for i, p in enumerate(attacked) if i != 3] == [p for i, p in enumerate(products) if i != 3]
    assert attacked[3].text().endswith(SUFFIX)


def test_max_products_keeps_a_seeded_subset_in_catalog_order():
    full = load_catalog("running_shoes")
    first = load_catalog("running_shoes", max_products=4, seed=7)
    again = load_catalog("running_shoes", max_products=4, seed=7)
    assert first == again
    assert len(first.products) == 4
    positions = [full.names().index(name) for name in first.names()]
    assert positions == sorted(positions)
    assert first.requests == full.requests
    assert first.info["subset_seed"] == "7"
    subsets = {tuple(load_catalog("running_shoes", max_products=4, seed=s).names()) for s in range(6)}
    assert len(subsets) > 1


def test_max_products_at_least_the_pool_returns_everything():
    assert load_catalog("headphones", max_products=50) == load_catalog("headphones")


@pytest.mark.parametrize("bad", [0, 1, -3, True, 2.5])
def test_max_products_must_be_an_integer_of_at_least_two(bad):
    with pytest.raises(ConfigError, match="catalog.max_products"):
        load_catalog("headphones", max_products=bad)


def test_subsample_draws_from_its_own_generator():
    import numpy as np

    np.random.seed(0)
    first = subsample(load_catalog("coffee_machines"), max_products=3, seed=1)
    np.random.seed(123)
    assert subsample(load_catalog("coffee_machines"), max_products=3, seed=1) == first


def test_unknown_name_lists_known_names_with_did_you_mean():
    with pytest.raises(ConfigError) as err:
        load_catalog("coffee_machine")
    message = str(err.value)
    assert "catalog.name" in message and "did you mean 'coffee_machines'" in message
    assert "running_shoes" in message and "\n" not in message


# --------------------------------------------------------------------------------------------
# User catalog files


def _user_record() -> dict:
    return {
        "name": "desk_lamps",
        "products": [
            {"name": "Lamp A", "fields": {"description": "A bright lamp.", "price": "$20"}},
            {"name": "Lamp B", "fields": {"description": "A dim lamp.", "price": "$15"}},
            {"name": "Lamp C", "fields": {"price": "$30", "description": "A tall lamp."}},
        ],
        "requests": ["I need a desk lamp.", "What lamp is good for reading?"],
    }


def _write(tmp_path: Path, record: object, name: str = "mine.json") -> Path:
    path = tmp_path / name
    path.write_text(record if isinstance(record, str) else json.dumps(record), encoding="utf-8")
    return path


def test_user_file_loads_keeping_field_order(tmp_path):
    path = _write(tmp_path, _user_record())
    catalog = load_catalog_file(path)
    assert catalog.name == "desk_lamps" and catalog.source == "file"
    assert catalog.names() == ["Lamp A", "Lamp B", "Lamp C"]
    assert [key for key, _ in catalog.products[2].fields] == ["price", "description"]
    assert catalog.info["file"] == str(path)
    assert catalog.products[2].with_suffix("go").fields[-1] == ("description", "A tall lamp. go")


def test_user_file_name_defaults_to_the_file_stem(tmp_path):
    record = _user_record()
    del record["name"]
    assert load_catalog_file(_write(tmp_path, record, "lamps.json")).name == "lamps"


def _without_name_of_product_1(record):
    del record["products"][1]["name"]


def _one_product(record):
    record["products"] = record["products"][:1]


def _one_request(record):
    record["requests"] = record["requests"][:1]


def _numeric_field(record):
    record["products"][0]["fields"]["price"] = 20


def _no_fields(record):
    del record["products"][2]["fields"]


def _empty_request(record):
    record["requests"][1] = "  "


def _typo_key(record):
    record["product"] = record.pop("products")


def _duplicate_name(record):
    record["products"][2]["name"] = "Lamp A"


def _products_not_a_list(record):
    record["products"] = {"Lamp A": {}}


def _no_requests(record):
    del record["requests"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_without_name_of_product_1, "products[1].name: required"),
        (_one_product, "products: at least 2 products"),
        (_one_request, "requests: at least 2"),
        (_numeric_field, "products[0].fields.price: must be a string"),
        (_no_fields, "products[2].fields: required"),
        (_empty_request, "requests[1]: must be a non-empty string"),
        (_typo_key, "product: unknown key (did you mean 'products'?)"),
        (_duplicate_name, "products[2].name: duplicate 'Lamp A'"),
        (_products_not_a_list, "products: must be a list"),
        (_no_requests, "requests: required"),
    ],
)
def test_bad_user_file_gives_a_one_line_config_error_naming_file_and_key(tmp_path, mutate, expected):
    record = _user_record()
    mutate(record)
    path = _write(tmp_path, record)
    with pytest.raises(ConfigError) as err:
        load_catalog_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{\"products\": [", "invalid JSON at line 1"), ("[1, 2]", "expected a JSON object")],
)
def test_unparseable_user_file_names_the_file(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {expected}")):
        load_catalog_file(path)


def test_missing_user_file(tmp_path):
    with pytest.raises(ConfigError, match="catalog file not found"):
        load_catalog_file(tmp_path / "absent.json")


# --------------------------------------------------------------------------------------------
# Amazon Scientific: parsing rules on a small hand-made file, then the real data


@pytest.mark.parametrize("name", SCIENTIFIC)
def test_scientific_requests_files_are_well_formed(name):
    record = _packaged_record(name)
    assert record["name"] == name
    assert record["leaf"].strip() == record["leaf"] and record["leaf"]
    assert len(set(record["requests"])) == len(record["requests"]) >= 24
    assert "products" not in record


def test_item_text_split_keeps_periods_inside_titles_and_brands():
    text = "Caulk, 10.1 Oz. Tube, White. Industrial & Scientific Tapes Caulk. S.O.L. Survive Outdoors. "
    assert split_scientific_text(text) == (
        "Caulk, 10.1 Oz. Tube, White",
        "Industrial & Scientific Tapes Caulk",
        "S.O.L. Survive Outdoors",
    )
    assert split_scientific_text("Fan, 24 Inch. . TPI. ") == ("Fan, 24 Inch", "", "TPI")
    assert split_scientific_text(" Industrial & Scientific />. Industrial & Scientific X Y. B. ")[0] == ""


TINY_SCIENTIFIC = """item_id:token\ttext:token_seq
A1\tAlpha  Printer. Industrial & Scientific Additive Manufacturing Products 3D Printers. Alpha. 
A2\tBelt Kit for 3D Printers. Industrial & Scientific Additive Manufacturing Products 3D Printer Parts & Accessories 3D Printer Accessories. Beta. 
A3\tGamma Printer, 6 in. Build. Industrial & Scientific Additive Manufacturing Products 3D Printers. . 
A4\t Industrial & Scientific />. Industrial & Scientific Additive Manufacturing Products 3D Printers. Delta. 
A5\tAlpha Printer. Industrial & Scientific Additive Manufacturing Products 3D Printers. Alpha Copy. 
A6\tEpsilon Pen. Industrial & Scientific Additive Manufacturing Products 3D Printers. Unknown. 
A7\tPLA Spool for 3D Printers. Industrial & Scientific Additive Manufacturing Products 3D Printing Supplies 3D Printing Filament. Zeta. 
A8\tEta Printer. Industrial & Scientific Additive Manufacturing Products 3D Printers. Eta Inc. 
"""


@pytest.fixture
def tiny_data_dir(tmp_path):
    folder = tmp_path / "amazon-scientific"
    folder.mkdir()
    (folder / "Scientific.text").write_text(TINY_SCIENTIFIC, encoding="utf-8")
    return tmp_path


def test_leaf_rules_on_a_hand_made_file(tiny_data_dir):
    catalog = load_catalog("scientific_3d_printers", data_dir=tiny_data_dir)
    assert catalog.source == "amazon-scientific"
    assert catalog.names() == ["Alpha Printer", "Gamma Printer, 6 in. Build", "Epsilon Pen", "Eta Printer"]
    assert [p.source_id for p in catalog.products] == ["A1", "A3", "A6", "A8"]
    assert catalog.products[0].fields == (
        ("category", "Industrial & Scientific Additive Manufacturing Products 3D Printers"),
        ("brand", "Alpha"),
    )
    assert [key for key, _ in catalog.products[1].fields] == ["category"]
    assert [key for key, _ in catalog.products[2].fields] == ["category"]
    assert catalog.info["leaf"] == "3D Printers" and catalog.info["pool_size"] == "4"


def test_data_dir_comes_from_the_environment(tiny_data_dir, monkeypatch):
    monkeypatch.setenv("REDTEAM_DATA_DIR", str(tiny_data_dir))
    assert len(load_catalog("scientific_3d_printers").products) == 4


def test_missing_data_dir_names_the_key_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("REDTEAM_DATA_DIR", raising=False)
    with pytest.raises(ConfigError, match=r"catalog\.data_dir.*Scientific\.text"):
        load_catalog("scientific_duct_tape")
    with pytest.raises(ConfigError) as err:
        load_catalog("scientific_duct_tape", data_dir=tmp_path)
    message = str(err.value)
    assert message.startswith("catalog.data_dir: ")
    assert str(tmp_path / "amazon-scientific" / "Scientific.text") in message
    assert "\n" not in message


@pytest.mark.realdata
@pytest.mark.parametrize("name", SCIENTIFIC)
def test_real_scientific_catalog_selects_only_its_leaf(name, real_data_dir):
    catalog = load_catalog(name, data_dir=real_data_dir)
    leaf = _packaged_record(name)["leaf"]
    assert catalog.info["leaf"] == leaf
    assert len(catalog.products) == int(catalog.info["pool_size"]) >= 20
    categories = {dict(product.fields)["category"] for product in catalog.products}
    assert len(categories) == 1
    (category,) = categories
    assert category.startswith("Industrial & Scientific ") and category.endswith(" " + leaf)
    assert len(set(catalog.names())) == len(catalog.names())
    assert len(set(catalog.requests)) == len(catalog.requests) >= 24
    _assert_no_request_names_a_product(catalog)


@pytest.mark.realdata
def test_real_3d_printers_exclude_parts_and_filament(real_data_dir):
    catalog = load_catalog("scientific_3d_printers", data_dir=real_data_dir)
    for product in catalog.products:
        category = dict(product.fields)["category"]
        assert "Parts & Accessories" not in category and "Supplies" not in category


@pytest.mark.realdata
@pytest.mark.parametrize("name", SCIENTIFIC)
def test_real_names_are_titles_and_brand_is_the_last_field(name, real_data_dir):
    catalog = load_catalog(name, data_dir=real_data_dir)
    raw = _raw_texts(real_data_dir)
    for product in catalog.products:
        text = " ".join(raw[product.source_id].replace(" />", "").split())
        assert text.startswith(product.name + ". Industrial & Scientific "), product.name
        key, value = product.fields[-1]
        if key == "brand":
            assert text.endswith(f". {value}."), (text, value)
        else:
            assert product.fields == (("category", product.fields[0][1]),)


def _raw_texts(data_dir: Path) -> dict[str, str]:
    lines = (data_dir / "amazon-scientific" / "Scientific.text").read_text(encoding="utf-8").split("\n")[1:]
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


@pytest.mark.realdata
def test_real_pool_keeps_the_first_of_duplicate_titles(real_data_dir):
    items = read_scientific_items(real_data_dir / "amazon-scientific" / "Scientific.text")
    catalog = load_catalog("scientific_ph_meters", data_dir=real_data_dir)
    first_asin = {}
    for item in items:
        first_asin.setdefault(item.title, item.asin)
    assert all(first_asin[p.name] == p.source_id for p in catalog.products)


@pytest.mark.realdata
def test_real_max_products_subset_is_seeded_and_ordered(real_data_dir):
    full = load_catalog("scientific_duct_tape", data_dir=real_data_dir)
    first = load_catalog("scientific_duct_tape", data_dir=real_data_dir, max_products=10, seed=3)
    assert first == load_catalog("scientific_duct_tape", data_dir=real_data_dir, max_products=10, seed=3)
    other = load_catalog("scientific_duct_tape", data_dir=real_data_dir, max_products=10, seed=4)
    assert len(first.products) == len(other.products) == 10
    assert first.names() != other.names()
    positions = [full.names().index(name) for name in first.names()]
    assert positions == sorted(positions)
    assert first.info["pool_size"] == full.info["pool_size"]
