"""Forward passes whose answer for one row does not depend on the other rows of the call.

A padded batch makes a row's numbers depend on its neighbours twice over: the padded width is the
longest row's, and the matrix kernels pick their blocking (hence their summation order) by the
number of rows, so the same history scored alone, in a batch of 7 or in a batch of 512 differs in
the last bits, and one flipped tie changes a top-k list. :func:`invariant_batches` removes both:

* each row is padded to a width that depends on its own length only (the next power of two, at
  least :data:`MIN_WIDTH`, capped), so rows are grouped by width;
* every forward pass has a multiple of :data:`ROW_GRANULE` rows per torch thread (the caller fills
  the tail with copies of a real row and drops their outputs).

The row count matters twice: GEMM kernels choose their blocking by it, and an elementwise op
(SiLU, GELU, exp) splits a tensor into one contiguous range per thread, computing full SIMD vectors
with one code path and a range's ragged end with another, so an element's last bit depends on
where the thread boundary falls. With ``8 x threads`` rows of power-of-two width (or the cap) the
boundaries fall on whole rows of whole vectors. This is an engineering fact about torch's CPU
kernels, not a law: ``tests/test_batch_invariance.py`` checks it for every victim and for the
language-model embedder (alone, in a mixed batch, shuffled, after a cache warm-up) at 1 and 2
threads. A GPU or another BLAS needs its own check.

The price: a pass is never smaller than ``8 x threads`` rows, so one history (or one listing text
re-embedded after an edit) costs that many rows, and a ``batch_size`` below it is raised to it;
GRU victims group by exact length, so a call with many lengths runs many small passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

ROW_GRANULE = 8  # rows per torch thread in every forward pass
MIN_WIDTH = 8


def row_granule() -> int:
    """Rows per forward pass come in multiples of this: :data:`ROW_GRANULE` per torch thread."""
    import torch

    return ROW_GRANULE * max(1, torch.get_num_threads())


def bucket_width(length: int, cap: int) -> int:
    """The padded width of a row of ``length`` tokens: the next power of two (at least
    :data:`MIN_WIDTH`), at most ``cap``."""
    width = MIN_WIDTH
    while width < length:
        width *= 2
    return max(1, min(width, cap))


def invariant_batches(lengths: Sequence[int], *, cap: int, batch_size: int,
                      exact: bool = False) -> Iterator[tuple[int, np.ndarray, int]]:
    """``(width, row indices, rows to run)`` per forward pass: rows grouped by their bucket width
    (``exact``: by their length itself, for a model whose packed recurrence runs a different
    number of rows at each step when lengths differ), at most ``batch_size`` real rows per pass,
    and the pass padded up to a multiple of :func:`row_granule` rows (``rows to run >= len(indices)``)."""
    granule = row_granule()
    step = max(granule, batch_size - batch_size % granule)
    widths = np.array([max(1, min(int(n), cap)) if exact else bucket_width(int(n), cap) for n in lengths], dtype=np.int64)
    for width in np.unique(widths):
        rows = np.flatnonzero(widths == width)
        for start in range(0, rows.size, step):
            part = rows[start : start + step]
            yield int(width), part, -(-part.size // granule) * granule


def filled(indices: np.ndarray, rows: int) -> np.ndarray:
    """``indices`` followed by copies of its first entry up to ``rows`` entries."""
    return np.concatenate([indices, np.full(rows - indices.size, indices[0], dtype=indices.dtype)])
