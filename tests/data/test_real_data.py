"""The real benchmark data sets load with their published sizes (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from redteam.data.loaders import load_amazon_beauty, load_amazon_scientific, load_amazon_sports, load_movielens
from redteam.data.kcore import kcore

pytestmark = pytest.mark.realdata

# name -> (loader, users, items, interactions), from the data README
EXPECTED = {
    "amazon-beauty": (load_amazon_beauty, 22_363, 12_101, 198_502),
    "amazon-scientific": (load_amazon_scientific, 8_442, 4_385, 59_427),
    "ml-100k": (load_movielens, 943, 1_682, 100_000),
    "amazon-sports": (load_amazon_sports, 35_598, 18_357, 296_337),
}


def folder(real_data_dir: Path, name: str) -> Path:
    path = real_data_dir / name
    if not path.is_dir():
        pytest.skip(f"real data not found: {path}")
    return path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts(real_data_dir: Path, name: str) -> None:
    loader, users, items, interactions = EXPECTED[name]
    ds = loader(folder(real_data_dir, name))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (users, items, interactions)
    flat = np.concatenate(ds.sequences)
    assert flat.min() == 1 and flat.max() == ds.n_items
    assert (ds.item_popularity()[1:] > 0).all()


def test_beauty_titles(real_data_dir: Path) -> None:
    ds = load_amazon_beauty(folder(real_data_dir, "amazon-beauty"))
    assert ds.item_text is not None
    assert abs(sum(1 for t in ds.item_text if t) - 12_094) <= 5
    assert ds.item_ids[1].startswith("B") and len(ds.item_ids[1]) == 10  # an ASIN
    assert kcore(ds, 5, 5).n_interactions == ds.n_interactions  # already a 5-core


def test_scientific_text_for_every_item(real_data_dir: Path) -> None:
    ds = load_amazon_scientific(folder(real_data_dir, "amazon-scientific"))
    assert ds.item_text is not None and all(ds.item_text[1:])


def test_ml100k_order_and_text(real_data_dir: Path) -> None:
    ds = load_movielens(folder(real_data_dir, "ml-100k"))
    assert ds.item_text[1].startswith("Toy Story (1995). Animation, Children's, Comedy")
    assert ds.item_text[267].startswith("unknown")
    for ts in ds.timestamps[:50]:
        assert (np.diff(ts) >= 0).all()
