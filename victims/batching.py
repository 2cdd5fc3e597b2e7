"""Padding helpers: histories are left-padded so the most recent item is the last column."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def left_pad(histories: Sequence[Sequence[int] | np.ndarray], max_len: int, *, width: int | None = None) -> torch.Tensor:
    """[B, L] int64, L = ``width`` or the longest kept history; each row right-aligned, zeros before it."""
    kept = [np.asarray(h, dtype=np.int64)[-max_len:] for h in histories]
    width = width or max(1, max((len(h) for h in kept), default=1))
    out = np.zeros((len(kept), width), dtype=np.int64)
    for row, h in enumerate(kept):
        if len(h):
            out[row, width - len(h):] = h
    return torch.from_numpy(out)


def left_pad_times(times: Sequence[np.ndarray | None], histories: Sequence[Sequence[int] | np.ndarray],
                   max_len: int, *, width: int | None = None) -> torch.Tensor:
    """[B, L] float64 event times laid out like :func:`left_pad` of ``histories``; NaN for padding
    and for a history whose times are None. Each times array must match its history's length."""
    width = width or max(1, max((min(len(h), max_len) for h in histories), default=1))
    out = np.full((len(histories), width), np.nan)
    for row, (h, t) in enumerate(zip(histories, times, strict=True)):
        if t is None:
            continue
        t = np.asarray(t, dtype=np.float64)
        if len(t) != len(h):
            raise ValueError(f"history {row}: {len(h)} items but {len(t)} event times")
        kept = t[-max_len:] if len(t) else t
        if len(kept):
            out[row, width - len(kept):] = kept
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
