"""Most-popular baseline: every user gets the catalog ranked by training interaction count.

The floor any sequential model must clear; also a sanity check on the metrics (ties among
equally popular items are broken against the target, so it cannot look better than it is).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from redteam.errors import DataError
from victims.base import FitReport, Histories, read_config, write_config
from redteam.params import Params


class PopularityParams(Params):
    pass


class Popularity:
    """Popularity victim. Threat model: black-box target behind the API (its output leaks counts)."""

    alias = "popularity"
    Params = PopularityParams

    def __init__(self, params: PopularityParams | None = None, **overrides: Any) -> None:
        self.params = params or PopularityParams(**overrides)
        self.n_items = 0
        self.counts = torch.zeros(1)

    def fit(
        self,
        train: list[np.ndarray],
        valid: tuple[list[np.ndarray], np.ndarray] | None,
        *,
        n_items: int,
        seed: int,
        hooks: Sequence[Any] = (),
        progress: Callable[[int, int, dict[str, float]], None] | None = None,
        user_weights: torch.Tensor | None = None,
    ) -> FitReport:
        self.n_items = n_items
        flat = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
        weights = None
        if user_weights is not None:
            weights = np.repeat(user_weights.numpy(), [len(s) for s in train])
        self.counts = torch.from_numpy(np.bincount(flat, weights=weights, minlength=n_items + 1).astype(np.float32))
        return FitReport(epochs_run=0, threads=torch.get_num_threads())

    def score(self, histories: Histories) -> torch.Tensor:
        out = self.counts.unsqueeze(0).repeat(len(histories), 1)
        out[:, 0] = float("-inf")
        return out

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        path.mkdir(parents=True, exist_ok=True)
        save_file({"counts": self.counts.contiguous()}, str(path / "model.safetensors"))
        write_config(path, self.alias, self.params, self.n_items)

    @classmethod
    def load(cls, path: Path) -> "Popularity":
        from safetensors.torch import load_file

        config = read_config(path, cls.alias)
        victim = cls(PopularityParams(**config["params"]))
        victim.n_items = int(config["n_items"])
        try:
            victim.counts = load_file(str(path / "model.safetensors"))["counts"]
        except Exception as exc:
            raise DataError(f"{path / 'model.safetensors'}: cannot load weights ({exc})") from exc
        return victim
