"""Padding helpers: histories are left-padded so the most recent item is the last column."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def left_pad(histories: Sequence[Sequence[int] | np.ndarray], max_len: int) -> torch.Tensor:
    """[B, L] int64, L = longest kept history; each row right-aligned, zeros before it."""
    kept = [np.asarray(h, dtype=np.int64)[-max_len:] for h in histories]
    width = max(1, max((len(h) for h in kept), default=1))
    out = np.zeros((len(kept), width), dtype=np.int64)
    for row, h in enumerate(kept):
        if len(h):
            out[row, width - len(h):] = h
    return torch.from_numpy(out)


def left_to_right(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Move each row's last ``lengths[b]`` columns to the front (left-padded -> right-padded).

    Works on [B, L] and [B, L, D]; applying it with the same lengths on a right-padded tensor
    via :func:`right_to_left` restores the layout.
    """
    b, width = x.shape[:2]
    idx = (torch.arange(width).unsqueeze(0) + (width - lengths).unsqueeze(1)) % width
    if x.dim() == 3:
        idx = idx.unsqueeze(-1).expand(-1, -1, x.shape[2])
    return torch.gather(x, 1, idx)


def right_to_left(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    b, width = x.shape[:2]
    idx = (torch.arange(width).unsqueeze(0) - (width - lengths).unsqueeze(1)) % width
    if x.dim() == 3:
        idx = idx.unsqueeze(-1).expand(-1, -1, x.shape[2])
    return torch.gather(x, 1, idx)
