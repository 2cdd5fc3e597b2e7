"""The embedded default data set: a seeded synthetic shop with item text.

Catalog: up to 12 hand-written categories (skincare, coffee, cycling, ...), each with a few
brands and title words; every item has a category, a brand, a title such as
``"Lumora Hydrating Serum 50ml"`` and the text ``"Title. Category. Brand."``. Popularity is
Zipf-like. Each user has 1-3 interest categories. Sequences are walks that, at each step, either

* follow the current item's sparse successor list (a few seeded successors per item, mostly of
  the same brand or category): the sequential signal,
* jump to a popular item of one of the user's interests,
* jump to a popular item of some other category, or
* re-consume one of the last few items.

Lengths are ``min_length + lognormal`` with the requested mean, capped at ``max_length``. The
mix is tuned so that a first-order Markov model clearly beats popularity without the next item
being trivially predictable (see tests/data/test_synthetic.py). Deterministic for a seed; only
the seeded generators from :func:`redteam.seeding.numpy_rng` are used.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from redteam.data.dataset import SequenceDataset
from redteam.errors import ConfigError
from redteam.limits import MAX_ITEMS, MAX_USERS
from redteam.seeding import numpy_rng

__all__ = ["CATEGORIES", "make_synthetic"]


@dataclass(frozen=True)
class Category:
    """Vocabulary of one category (invented brand names and generic product words)."""

    label: str
    brands: tuple[str, ...]
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    sizes: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Skincare",
        ("Lumora", "Velvessa", "Dermabloom", "Aqualis", "Pure Fenn"),
        ("Gentle", "Hydrating", "Brightening", "Soothing", "Renewing", "Clarifying", "Firming", "Daily"),
        ("Cleanser", "Serum", "Moisturizer", "Toner", "Eye Cream", "Face Mask", "Night Cream", "Exfoliant"),
        ("30ml", "50ml", "100ml", "200ml"),
    ),
    Category(
        "Hair Care",
        ("Silkroot", "Maneva", "Corrabel", "Thessaly Hair"),
        ("Volumizing", "Repairing", "Smoothing", "Color-Safe", "Curl-Defining", "Nourishing", "Lightweight", "Clarifying"),
        ("Shampoo", "Conditioner", "Hair Oil", "Hair Mask", "Styling Cream", "Leave-In Spray", "Dry Shampoo", "Scalp Tonic"),
        ("100ml", "250ml", "400ml", "1L"),
    ),
    Category(
        "Makeup",
        ("Rosquet", "Nuvelle", "Kirra Beauty", "Opaline"),
        ("Matte", "Satin", "Long-Wear", "Sheer", "Luminous", "Waterproof", "Velvet", "Buildable"),
        ("Lipstick", "Foundation", "Mascara", "Eyeliner", "Blush", "Concealer", "Eyeshadow Palette", "Setting Powder"),
        ("Shade 01", "Shade 02", "Shade 03", "Shade 04"),
    ),
    Category(
        "Fragrance",
        ("Aubade", "Solenne", "Marivel", "Noctis"),
        ("Amber", "Citrus", "Woody", "Floral", "Fresh", "Musky", "Spiced", "Powdery"),
        ("Eau de Parfum", "Eau de Toilette", "Body Mist", "Perfume Oil", "Cologne", "Solid Perfume", "Scented Candle", "Room Spray"),
        ("10ml", "30ml", "50ml", "100ml"),
    ),
    Category(
        "Coffee",
        ("Brewhaven", "Kaldi Row", "Ember & Oak", "Tostado"),
        ("Dark Roast", "Medium Roast", "Single-Origin", "Decaf", "Espresso", "Light Roast", "Organic", "Cold Brew"),
        ("Whole Beans", "Ground Coffee", "Coffee Pods", "Instant Coffee", "Drip Bags", "Concentrate", "House Blend", "Sampler"),
        ("250g", "500g", "1kg", "12-pack"),
    ),
    Category(
        "Tea",
        ("Leafwell", "Camellio", "Misty Peak", "Chai House"),
        ("Green", "Black", "Oolong", "Herbal", "Jasmine", "Earl Grey", "Chamomile", "Matcha"),
        ("Loose Leaf Tea", "Tea Bags", "Tea Sachets", "Tea Powder", "Tea Tin", "Iced Tea Mix", "Tea Sampler", "Latte Mix"),
        ("20-count", "50g", "100g", "250g"),
    ),
    Category(
        "Snacks",
        ("Crunchwell", "Nutterly", "Harvest Lane", "Snackory"),
        ("Salted", "Honey", "Spicy", "Dark Chocolate", "Sea Salt", "Roasted", "Cheddar", "Maple"),
        ("Almonds", "Granola Bars", "Pretzels", "Trail Mix", "Rice Crackers", "Popcorn", "Cashews", "Protein Bites"),
        ("100g", "200g", "6-pack", "12-pack"),
    ),
    Category(
        "Cycling",
        ("Velocor", "Spokewise", "Ridgeline Cycle", "Cadenzo"),
        ("Carbon", "Aero", "Lightweight", "Reflective", "Padded", "Tubeless", "Alloy", "All-Weather"),
        ("Bike Helmet", "Cycling Gloves", "Bike Light", "Saddle", "Inner Tube", "Bottle Cage", "Bike Lock", "Cycling Jersey"),
        ("Size S", "Size M", "Size L", "Size XL"),
    ),
    Category(
        "Running",
        ("Stridewell", "Paceline", "Tempo Run", "Kinetra"),
        ("Breathable", "Cushioned", "Trail", "Compression", "Reflective", "Lightweight", "Moisture-Wicking", "Thermal"),
        ("Running Shoes", "Running Socks", "Running Shorts", "Hydration Vest", "Running Cap", "Armband", "Running Tights", "Running Jacket"),
        ("Size S", "Size M", "Size L", "Size XL"),
    ),
    Category(
        "Camping",
        ("Pinecrest", "Trailhold", "Nomad Ridge", "Campanula"),
        ("Ultralight", "Waterproof", "Insulated", "Compact", "Folding", "Rugged", "Solar", "Four-Season"),
        ("Tent", "Sleeping Bag", "Camp Stove", "Headlamp", "Sleeping Pad", "Lantern", "Camp Chair", "Water Filter"),
        ("1-Person", "2-Person", "Small", "Large"),
    ),
    Category(
        "Kitchen",
        ("Cookwell", "Ferrona", "Saltbox", "Larder & Co"),
        ("Nonstick", "Stainless", "Cast Iron", "Bamboo", "Silicone", "Ceramic", "Enameled", "Copper"),
        ("Frying Pan", "Saucepan", "Cutting Board", "Chef Knife", "Spatula Set", "Mixing Bowl", "Dutch Oven", "Measuring Cups"),
        ("20cm", "24cm", "28cm", "Set of 3"),
    ),
    Category(
        "Stationery",
        ("Inkwell", "Paperleaf", "Quillmark", "Notara"),
        ("Dotted", "Lined", "Gel", "Fountain", "Recycled", "Hardcover", "Pastel", "Fine-Point"),
        ("Notebook", "Pen Set", "Planner", "Sketchbook", "Highlighters", "Sticky Notes", "Journal", "Pencil Case"),
        ("A5", "A4", "Pocket", "12-pack"),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class _Mix:
    """Per-step probabilities of the walk's moves (the rest: jump within the user's interests)."""

    follow: float = 0.32  # next item from the current item's successors
    repeat: float = 0.06  # re-consume one of the last ``recent`` items
    explore: float = 0.06  # jump to another category
    recent: int = 5
    successors: int = 7  # successors per item
    same_brand: float = 0.45  # share of successors of the same brand ...
    same_category: float = 0.4  # ... of the same category (other brand); rest: anywhere
    zipf: float = 0.6  # popularity exponent


@dataclass(frozen=True)
class _Catalog:
    category: np.ndarray  # per item (0-based item index)
    brand: np.ndarray  # global brand index per item
    text: list[str]  # per item
    titles: list[str]


def make_synthetic(
    *,
    users: int = 2000,
    items: int = 1000,
    mean_length: float = 12,
    seed: int = 0,
    categories: int = 12,
    min_length: int = 5,
    max_length: int = 50,
    name: str = "synthetic",
) -> SequenceDataset:
    """A seeded synthetic shop data set with item text (see the module docstring)."""
    _validate(users=users, items=items, mean_length=mean_length, categories=categories,
              min_length=min_length, max_length=max_length)  # fmt: skip
    mix = _Mix()
    n_cat = min(categories, len(CATEGORIES), items)
    catalog = _build_catalog(items, n_cat, numpy_rng(seed, "data", "synthetic", "catalog"))
    popularity = _popularity(items, mix.zipf, numpy_rng(seed, "data", "synthetic", "popularity"))
    successors = _successors(catalog, popularity, mix, numpy_rng(seed, "data", "synthetic", "transitions"))
    user_rng = numpy_rng(seed, "data", "synthetic", "users")
    lengths = _lengths(users, mean_length, min_length, max_length, user_rng)
    interests = [_interests(n_cat, user_rng) for _ in range(users)]
    walker = _Walker(catalog, popularity, successors, mix, numpy_rng(seed, "data", "synthetic", "walks"))
    sequences = [walker.walk(int(n), interests[u]) + 1 for u, n in enumerate(lengths)]
    return SequenceDataset(
        name=name,
        sequences=sequences,
        n_items=items,
        item_text=[""] + catalog.text,
        item_ids=[""] + [f"syn{i:05d}" for i in range(1, items + 1)],
        user_ids=[f"user{u:05d}" for u in range(1, users + 1)],
        meta={"source": "embedded", "generator": "synthetic-v1", "seed": seed},
    )


def _validate(*, users: int, items: int, mean_length: float, categories: int, min_length: int, max_length: int) -> None:
    if users < 1 or items < 2 or categories < 1:
        raise ConfigError(f"synthetic: need users >= 1, items >= 2, categories >= 1 (got {users}, {items}, {categories})")
    for key, value, limit, name in (("users", users, MAX_USERS, "MAX_USERS"), ("items", items, MAX_ITEMS, "MAX_ITEMS")):
        if value > limit:
            raise ConfigError(f"synthetic: {key}: {value} is over the limit of {limit} (redteam.limits.{name})")
    if not 1 <= min_length < max_length:
        raise ConfigError(f"synthetic: need 1 <= min_length < max_length (got {min_length}, {max_length})")
    if not min_length < mean_length < max_length:
        raise ConfigError(f"synthetic: mean_length must be in ({min_length}, {max_length}), got {mean_length}")


# --------------------------------------------------------------------------------------------
# catalog


def _category_sizes(items: int, n_cat: int, rng: np.random.Generator) -> np.ndarray:
    weights = 0.6 + rng.random(n_cat)
    sizes = np.maximum(1, np.floor(items * weights / weights.sum()).astype(np.int64))
    while sizes.sum() > items:
        sizes[np.argmax(sizes)] -= 1
    sizes[np.argsort(-weights)[: items - sizes.sum()]] += 1
    return sizes


def _build_catalog(items: int, n_cat: int, rng: np.random.Generator) -> _Catalog:
    sizes = _category_sizes(items, n_cat, rng)
    category = rng.permutation(np.repeat(np.arange(n_cat), sizes))
    brand = np.zeros(items, dtype=np.int64)
    titles = [""] * items
    text = [""] * items
    brand_offset = 0
    for c in range(n_cat):
        spec = CATEGORIES[c]
        members = np.flatnonzero(category == c)
        shares = 1.0 / np.arange(1, len(spec.brands) + 1) ** 0.7
        local = rng.choice(len(spec.brands), size=len(members), p=shares / shares.sum())
        for item, b, title in zip(members, local, _titles(spec, local, rng)):
            brand[item] = brand_offset + b
            titles[item] = title
            text[item] = f"{title}. {spec.label}. {spec.brands[b]}."
        brand_offset += len(spec.brands)
    return _Catalog(category=category, brand=brand, text=text, titles=titles)


def _titles(spec: Category, brands: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Distinct ``"Brand Adjective Noun Size"`` titles (a numbered edition once all are used)."""
    n_words = len(spec.adjectives) * len(spec.nouns) * len(spec.sizes)
    used: dict[str, int] = {}
    titles = []
    for b in brands:
        w = int(rng.integers(n_words))
        a, rest = divmod(w, len(spec.nouns) * len(spec.sizes))
        n, s = divmod(rest, len(spec.sizes))
        title = f"{spec.brands[b]} {spec.adjectives[a]} {spec.nouns[n]} {spec.sizes[s]}"
        used[title] = used.get(title, 0) + 1
        titles.append(title if used[title] == 1 else f"{title} Edition {used[title]}")
    return titles


def _popularity(items: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf-like weights over a random ranking of the items (sums to 1)."""
    weights = 1.0 / np.arange(1, items + 1) ** exponent
    pop = weights[rng.permutation(items)]
    return pop / pop.sum()


def _successors(catalog: _Catalog, popularity: np.ndarray, mix: _Mix, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per item: (successor items, cumulative probabilities), a few successors each."""
    items = len(popularity)
    weights = np.sqrt(popularity)

    def pools(keys: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        groups = {int(k): np.flatnonzero(keys == k) for k in np.unique(keys)}
        return {k: (m, np.cumsum(weights[m])) for k, m in groups.items()}

    by_brand, by_cat = pools(catalog.brand), pools(catalog.category)
    everything = (np.arange(items), np.cumsum(weights))
    table = []
    for i in range(items):
        chosen: list[int] = []
        for _ in range(mix.successors * 4):
            if len(chosen) == mix.successors:
                break
            r = rng.random()
            if r < mix.same_brand:
                pool, cum = by_brand[int(catalog.brand[i])]
            elif r < mix.same_brand + mix.same_category:
                pool, cum = by_cat[int(catalog.category[i])]
            else:
                pool, cum = everything
            j = int(pool[_pick(cum, rng.random())])
            if j != i and j not in chosen:
                chosen.append(j)
        if not chosen:
            chosen = [int((i + 1) % items)]
        probs = rng.dirichlet(np.full(len(chosen), 1.5))
        probs = np.sort(probs)[::-1]
        table.append((np.array(chosen, dtype=np.int64), np.cumsum(probs)))
    return table


# --------------------------------------------------------------------------------------------
# users and walks


def _lengths(users: int, mean: float, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """``low + lognormal`` with mean ``mean`` (before the cap at ``high``)."""
    sigma = 0.8
    mu = np.log(mean - low) - sigma**2 / 2
    extra = rng.lognormal(mu, sigma, size=users)
    return np.minimum(high, low + np.round(extra)).astype(np.int64)


def _interests(n_cat: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1-3 interest categories and their cumulative weights."""
    k = min(n_cat, int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])))
    cats = rng.choice(n_cat, size=k, replace=False)
    weights = rng.dirichlet(np.full(k, 2.0))
    return cats, np.cumsum(weights)


def _pick(cumulative: np.ndarray | list[float], u: float) -> int:
    return min(bisect.bisect_right(cumulative, u * cumulative[-1]), len(cumulative) - 1)


class _Walker:
    def __init__(self, catalog: _Catalog, popularity: np.ndarray, successors: list, mix: _Mix, rng: np.random.Generator) -> None:
        self.successors = [(s.tolist(), c.tolist()) for s, c in successors]
        self.mix = mix
        self.rng = rng
        n_cat = int(catalog.category.max()) + 1
        self.members = [np.flatnonzero(catalog.category == c).tolist() for c in range(n_cat)]
        self.member_cum = [np.cumsum(popularity[m]).tolist() for m in self.members]
        self.n_cat = n_cat

    def _popular_in(self, c: int, u: float) -> int:
        return self.members[c][_pick(self.member_cum[c], u)]

    def walk(self, length: int, interests: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        cats, cum = interests
        cats_l, cum_l = cats.tolist(), cum.tolist()
        draws = self.rng.random((length, 3)).tolist()
        mix = self.mix
        seq: list[int] = []
        for u_move, u_a, u_b in draws:
            if seq and u_move < mix.follow:
                succ, succ_cum = self.successors[seq[-1]]
                seq.append(succ[_pick(succ_cum, u_a)])
            elif len(seq) >= 2 and u_move < mix.follow + mix.repeat:
                recent = seq[-mix.recent - 1 : -1]
                seq.append(recent[int(u_a * len(recent))])
            elif seq and u_move < mix.follow + mix.repeat + mix.explore:
                seq.append(self._popular_in(int(u_a * self.n_cat), u_b))
            else:
                seq.append(self._popular_in(cats_l[_pick(cum_l, u_a)], u_b))
        return np.array(seq, dtype=np.int64)
