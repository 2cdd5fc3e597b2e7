"""Seed derivation: one root seed, an independent stream per named component.

No global RNG is touched. ``derive_seed(root, "victim", "sasrec")`` and
``derive_seed(root, "attack", attacker_seed)`` give unrelated seeds, so an attacker's surrogate can
never start from the victim's initial weights by accident. Names are seeds and component names,
never row labels: rows that differ only in a switch draw the same randomness.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def derive_seed(root: int, *names: str | int) -> int:
    """A 63-bit seed derived from ``root`` and a path of component names."""
    text = "/".join([str(root), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def numpy_rng(root: int, *names: str | int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(root, *names))


def torch_generator(root: int, *names: str | int) -> "torch.Generator":
    import torch

    gen = torch.Generator()
    gen.manual_seed(derive_seed(root, *names))
    return gen
