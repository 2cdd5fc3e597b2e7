"""The poisoning targets of a run: drawn once from the root seed (or named by raw id) and shared
by every poisoning attack, so that their rows are comparable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from redteam.errors import ConfigError
from redteam.scenario import PoisoningConfig
from redteam.seeding import numpy_rng

if TYPE_CHECKING:
    from redteam.data.dataset import LeaveOneOutSplit, SequenceDataset

SUMMARY = {  # results.json["poisoning"]: what every poisoning row shares, besides the targets
    "popularity": "interactions in the training data the clean victim sees",
    "eligible": "real evaluation users whose test history lacks the target",
    "average": "per target, then across targets",
    "ci": "percentile bootstrap over users (targets fixed); a resampled user brings all its targets",
    "fake_users": "round(fake_share * real users), at least one per target, split evenly across the targets",
}


@dataclass(frozen=True)
class Targets:
    """The run's target items (ids 1..N), their raw ids and training popularity."""

    items: tuple[int, ...]
    raw: tuple[str, ...]
    popularity: tuple[int, ...]
    selection: str
    median_popularity: float

    def describe(self) -> list[dict[str, Any]]:
        return [{"item": i, "raw_id": r, "popularity": p} for i, r, p in zip(self.items, self.raw, self.popularity)]


def select_targets(dataset: "SequenceDataset", split: "LeaveOneOutSplit", cfg: PoisoningConfig, seed: int) -> Targets:
    """Explicit raw ids, or drawn from the root seed: ``unpopular`` = uniformly among items seen in
    training fewer times than the median seen item (items never seen in training are left out of
    both the pool and the median: an untrained embedding is another setting); ``buckets`` = one item from each of ``targets``
    equal-size buckets of the seen items sorted by popularity."""
    popularity = dataset.item_popularity(split.train)
    raw_ids = dataset.item_ids or [""] + [str(i) for i in range(1, dataset.n_items + 1)]
    seen_counts = popularity[1:][popularity[1:] >= 1]
    median = float(np.median(seen_counts)) if seen_counts.size else 0.0
    if cfg.target_ids is not None:
        index = {str(r): i for i, r in enumerate(raw_ids) if i > 0}
        items = []
        for given in cfg.target_ids:
            if str(given) not in index:
                example = ", ".join(repr(r) for r in raw_ids[1:4])
                raise ConfigError(f"poisoning.target_ids: '{given}' is not an item id of {dataset.name} (ids look like {example})")
            items.append(index[str(given)])
        if len(set(items)) != len(items):
            raise ConfigError("poisoning.target_ids: an item is named twice")
        selection = "explicit"
    else:
        rng = numpy_rng(seed, "poisoning-targets")
        seen = np.flatnonzero(popularity >= 1)
        seen = seen[seen > 0]
        if cfg.target_selection == "unpopular":
            pool = seen[popularity[seen] < median]
            if len(pool) < cfg.targets:  # a heavy tail of ties at the median
                pool = seen[popularity[seen] <= median]
            if len(pool) < cfg.targets:
                raise ConfigError(f"poisoning.targets: only {len(pool)} items are at or below the median popularity")
            items = sorted(rng.choice(pool, size=cfg.targets, replace=False).tolist())
        else:
            if len(seen) < cfg.targets:
                raise ConfigError(f"poisoning.targets: {cfg.targets} buckets but only {len(seen)} items seen in training")
            order = seen[np.lexsort((rng.permutation(len(seen)), popularity[seen]))]
            items = [int(rng.choice(bucket)) for bucket in np.array_split(order, cfg.targets)]
        selection = cfg.target_selection
    items = [int(i) for i in items]
    return Targets(tuple(items), tuple(str(raw_ids[i]) for i in items), tuple(int(popularity[i]) for i in items),
                   selection, median)
