"""Where ``redteam serve`` finds the victim it serves: a saved model folder (``config.json`` +
``model.safetensors``; a cache entry is one), or a run directory's ``victims/<label>-seed<seed>/``.
Only JSON and safetensors are read: nothing is unpickled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from redteam.errors import ConfigError, DataError


def model_folder(source: Path, *, victim: str | None = None, seed: int | None = None) -> Path:
    """The folder holding the model to serve; a one-line ConfigError says what is missing."""
    if not source.is_dir():
        raise ConfigError(f"{source}: not a folder (give a saved model folder, a cache entry or a run directory)")
    if (source / "config.json").is_file():
        return source
    saved = sorted(p for p in (source / "victims").glob("*-seed*") if (p / "config.json").is_file())
    if not saved:
        raise ConfigError(f"{source}: holds neither config.json (a saved model) nor victims/ (a run directory)")
    chosen = [p for p in saved if (victim is None or p.name.rsplit("-seed", 1)[0] == victim)
              and (seed is None or p.name.rsplit("-seed", 1)[1] == str(seed))]
    if len(chosen) != 1:
        names = ", ".join(p.name for p in saved)
        what = "no victim matches" if not chosen else "several victims match"
        raise ConfigError(f"{source}: {what} --victim {victim or '(any)'} --run-seed {seed if seed is not None else '(any)'}; "
                          f"saved: {names}")
    return chosen[0]


def load_model(folder: Path) -> Any:
    """The victim saved in ``folder`` (its class named by config.json's ``victim``)."""
    from redteam.registry import REGISTRY, resolve

    try:
        alias = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("victim")
    except (OSError, ValueError, AttributeError) as exc:
        raise DataError(f"{folder / 'config.json'}: not a saved victim ({exc})") from None
    if alias not in REGISTRY["victims"]:
        raise DataError(f"{folder / 'config.json'}: victim '{alias}' is not a registered victim")
    cls = resolve("victims", alias)
    if getattr(cls, "remote", False) or getattr(cls, "family", "recommender") != "recommender":
        raise DataError(f"{folder / 'config.json'}: '{alias}' cannot be served by redteam serve")
    return cls.load(folder)
