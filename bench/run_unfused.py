"""Run the redteam CLI with every trainer's AdamW unfused (the optimiser before 2026-12-07).

The one check it exists for: LoRec's Beauty rows moved when the trainers switched to torch's fused
AdamW kernel; this retrains under the old kernel with today's code (docs/results/defenses.md).
Give it a cache folder of its own: the kernel is not part of the model cache key.

    REDTEAM_CACHE_DIR=/tmp/unfused python bench/run_unfused.py run scenarios/... [redteam options]
"""

from __future__ import annotations

import redteam.trainer_loop as trainer_loop
import redteam.training as training
from attacks.extraction import distill
from redteam.cli import main

fused_adamw = trainer_loop.adamw


def unfused_adamw(parameters, *, lr: float, weight_decay: float = 0.0, fused: bool = True):
    return fused_adamw(parameters, lr=lr, weight_decay=weight_decay, fused=False)


for module in (trainer_loop, training, distill):
    module.adamw = unfused_adamw

if __name__ == "__main__":
    main()
