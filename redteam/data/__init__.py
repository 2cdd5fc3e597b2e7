"""Datasets: one type, file loaders, an embedded synthetic default, k-core and splits.

``load_dataset`` and ``DatasetConfig`` (which need pydantic) load on first use; the file
loaders live in :mod:`redteam.data.loaders` (pandas, imported inside the functions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redteam.data.dataset import PAD, LeaveOneOutSplit, SequenceDataset
from redteam.data.kcore import kcore
from redteam.data.synthetic import make_synthetic

if TYPE_CHECKING:
    from redteam.data.registry import DatasetConfig, load_dataset

__all__ = ["PAD", "DatasetConfig", "LeaveOneOutSplit", "SequenceDataset", "kcore", "load_dataset", "make_synthetic"]

_LAZY = {"DatasetConfig", "load_dataset"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from redteam.data import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
