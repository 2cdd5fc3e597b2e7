"""What the operator of a served victim decides: answers, budgets, rates, request limits, defenses."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from redteam.limits import Budget, Items
from redteam.scenario import ComponentSpec


class ServeSettings(BaseModel):
    """Settings of ``redteam serve`` (each a command-line option; also readable from a YAML file)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="interface to bind (loopback by default)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port, written to --ready-file)")
    topk: Items = Field(100, ge=1, description="longest list returned per history")
    expose_scores: bool = Field(False, description="return the scores of the returned items")
    exclude_history: bool = Field(False, description="drop the query's own items from answers")
    budget: Budget | None = Field(None, ge=0, description="queries (histories) allowed per key; None: unlimited")
    rate: float | None = Field(None, gt=0, description="requests per second allowed per key; None: unlimited")
    burst: int | None = Field(None, ge=1, description="requests a key may send at once before the rate applies (default: max(1, rate))")
    max_batch: int = Field(1024, ge=1, le=100_000, description="histories per request")
    max_history: int = Field(1000, ge=1, le=1_000_000, description="items per history")
    max_body_bytes: int = Field(8 << 20, ge=1024, le=1 << 30, description="bytes per request body")
    log_topk: int = Field(10, ge=1, description="returned ids kept per logged query")
    batch_size: int = Field(512, ge=1, description="histories scored per forward pass")
    ledger: Path | None = Field(None, description="SQLite file of usage and the query log (None: in memory, lost on exit)")
    seed: int = Field(0, description="root seed of randomised serving defenses")
    defenses: list[ComponentSpec] = Field(default_factory=list, description="serving defenses, innermost first")
    seed_path: list[str | int] | None = Field(None, description="names after the seed that key each defense's random "
                                              "stream (default: its label); the runner sets them to match in-process runs")

    @property
    def burst_size(self) -> int:
        return self.burst or max(1, int(self.rate or 1))
