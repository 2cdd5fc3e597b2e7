"""What produced a result: versions, threads, device, platform."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any


def environment_info() -> dict[str, Any]:
    import numpy
    import torch

    from redteam import __version__
    from redteam.cache import code_version

    return {
        "redteam": __version__,
        "code_version": code_version(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def default_threads() -> int:
    """The torch thread count used when none is configured: all cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (default: :func:`default_threads`) and return the number used."""
    import torch

    n = threads or default_threads()
    torch.set_num_threads(n)
    return n
