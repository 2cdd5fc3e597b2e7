"""Dataset names -> loaders, the ``dataset:`` config section, and data folder discovery.

Real data sets are read from ``dataset.path`` (that data set's folder), else from
``$REDTEAM_DATA_DIR/<name>/`` (a parent folder laid out like the shared benchmark data), else,
for MovieLens, from the download cache (``$REDTEAM_CACHE_DIR`` or ``~/.cache/redteam``,
then ``data/<name>/``). The embedded ``synthetic`` set needs no files.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from redteam.data.dataset import SequenceDataset
from redteam.data.download import ARCHIVES, default_cache_dir
from redteam.data.kcore import first_users
from redteam.data.kcore import kcore as kcore_filter
from redteam.data.synthetic import make_synthetic
from redteam.errors import ConfigError, DataError
from redteam.limits import Items, Users

__all__ = ["DATASET_NAMES", "DatasetConfig", "find_data_dir", "load_dataset"]

SYNTHETIC_OPTIONS = ("users", "items", "mean_length")
NEEDS_PATH = ("sequence-file", "recbole", "csv")


def _load_beauty(path: Path) -> SequenceDataset:
    from redteam.data.loaders import load_amazon_beauty

    return load_amazon_beauty(path)


def _load_scientific(path: Path) -> SequenceDataset:
    from redteam.data.loaders import load_amazon_scientific

    return load_amazon_scientific(path)


def _load_sports(path: Path) -> SequenceDataset:
    from redteam.data.loaders import load_amazon_sports

    return load_amazon_sports(path)


def _load_movielens(name: str) -> Callable[[Path], SequenceDataset]:
    def load(path: Path) -> SequenceDataset:
        from redteam.data.loaders import load_movielens

        return load_movielens(path, name=name)

    return load


def _load_sequence_file(path: Path) -> SequenceDataset:
    from redteam.data.loaders import load_sequence_file

    return load_sequence_file(path, name=path.name.split(".")[0])


def _load_recbole(path: Path) -> SequenceDataset:
    from redteam.data.loaders import load_recbole

    return load_recbole(path)


def _load_csv(path: Path) -> SequenceDataset:
    from redteam.data.loaders import load_csv

    return load_csv(path)


_LOADERS: dict[str, Callable[[Path], SequenceDataset]] = {
    "amazon-beauty": _load_beauty,
    "amazon-scientific": _load_scientific,
    "amazon-sports": _load_sports,
    "ml-100k": _load_movielens("ml-100k"),
    "ml-1m": _load_movielens("ml-1m"),
    "sequence-file": _load_sequence_file,
    "recbole": _load_recbole,
    "csv": _load_csv,
}

DATASET_NAMES: tuple[str, ...] = ("synthetic", *_LOADERS)


class DatasetConfig(BaseModel):
    """The ``dataset:`` section of a scenario.

    ``kcore``: minimum interactions per user AND per item, applied iteratively (0 = off), after
    ``max_users`` (keep the first N users, for quick runs). ``users``, ``items``, ``mean_length``
    configure the embedded ``synthetic`` set only.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field("synthetic", description="a data set (docs/scenarios.md#data): synthetic, amazon-beauty, amazon-scientific, "
                                               "amazon-sports, ml-100k, ml-1m, or the file formats sequence-file, recbole, csv")
    path: Path | None = Field(None, description="this data set's folder or file; required for sequence-file, recbole "
                                                "and csv (default: $REDTEAM_DATA_DIR/<name>, then downloads in "
                                                "$REDTEAM_CACHE_DIR/data)")
    kcore: int = Field(0, ge=0, description="iterative k-core filter: at least k interactions per user and per item (0: off)")
    max_users: int | None = Field(None, ge=1, description="keep the first N users (quick runs), before kcore")
    users: Users = Field(2000, ge=1, description="synthetic only: users generated")
    items: Items = Field(1000, ge=2, description="synthetic only: catalog size")
    mean_length: float = Field(12, description="synthetic only: mean interactions per user")

    @model_validator(mode="after")
    def _check(self) -> "DatasetConfig":
        if self.name not in DATASET_NAMES:
            close = difflib.get_close_matches(self.name, DATASET_NAMES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(DATASET_NAMES)})"
            raise ConfigError(f"dataset.name: unknown dataset {self.name!r}{hint}")
        if self.name == "synthetic":
            if self.path is not None:
                raise ConfigError("dataset.path: the synthetic dataset is embedded and takes no path")
            if not 5 < self.mean_length < 50:
                raise ConfigError(f"dataset.mean_length: must be in (5, 50), got {self.mean_length}")
            return self
        extra = [key for key in SYNTHETIC_OPTIONS if key in self.model_fields_set]
        if extra:
            raise ConfigError(f"dataset.{extra[0]}: only for the synthetic dataset, not {self.name!r}")
        if self.name in NEEDS_PATH and self.path is None:
            raise ConfigError(f"dataset.path: required for dataset {self.name!r}")
        return self


def data_dir_candidates(name: str) -> list[Path]:
    """Where a real data set's folder is looked for when ``dataset.path`` is not given."""
    candidates = []
    root = os.environ.get("REDTEAM_DATA_DIR")
    if root:
        candidates.append(Path(root).expanduser() / name)
    if name in ARCHIVES:
        candidates.append(default_cache_dir() / name)
    return candidates


def find_data_dir(name: str) -> Path | None:
    """The first existing folder among :func:`data_dir_candidates`, else None."""
    return next((p for p in data_dir_candidates(name) if p.is_dir()), None)


def _resolve_path(config: DatasetConfig) -> Path:
    if config.path is not None:
        path = config.path.expanduser()
        if not path.exists() and config.name != "recbole":  # recbole also takes a path prefix
            raise DataError(f"dataset {config.name!r}: path does not exist: {path}")
        return path
    found = find_data_dir(config.name)
    if found is None:
        looked = ", ".join(str(p) for p in data_dir_candidates(config.name)) or "REDTEAM_DATA_DIR is not set"
        hint = f"; or download it: redteam.data.download.download({config.name!r}, ...)" if config.name in ARCHIVES else ""
        raise DataError(
            f"dataset {config.name!r}: no data folder; set dataset.path or REDTEAM_DATA_DIR (looked in: {looked}){hint}"
        )
    return found


def load_dataset(config: DatasetConfig, *, seed: int) -> SequenceDataset:
    """Load (or generate) the configured data set, then apply ``max_users`` and ``kcore``.

    ``meta`` gets ``source`` (the folder/file, or ``"embedded"``) and ``kcore``.
    """
    if config.name == "synthetic":
        dataset = make_synthetic(users=config.users, items=config.items, mean_length=config.mean_length, seed=seed)
        source = "embedded"
    else:
        path = _resolve_path(config)
        dataset = _LOADERS[config.name](path)
        source = str(path)
    if config.max_users is not None:
        dataset = first_users(dataset, config.max_users)
    if config.kcore:
        dataset = kcore_filter(dataset, config.kcore, config.kcore)
    if dataset.n_users == 0:
        raise DataError(f"dataset {config.name!r}: no users left after max_users/kcore filtering")
    return dataclasses.replace(dataset, meta={**dataset.meta, "source": source, "kcore": config.kcore})
