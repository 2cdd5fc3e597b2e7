"""Run the redteam CLI with every trainer's AdamW unfused (the optimiser before 2026-12-07).

The one check it exists for: LoRec's Beauty rows moved when the trainers switched to torch's fused
AdamW kernel; this retrains under the old kernel with today's code (docs/results/defenses.md).
Give it a cache folder of its own: the kernel is not part of the model cache key.

    REDTEAM_CACHE_DIR=/tmp/unfused python bench/run_unfused.py run scenarios/... [redteam options]
"""

from __future__ import annotations

from redteam.cli import main
from redteam.trainer_loop import adamw

# the function object every trainer imported, so one default reaches them all
adamw.__kwdefaults__["fused"] = False

if __name__ == "__main__":
    main()
