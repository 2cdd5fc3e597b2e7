"""A recommender the testbed does not own: any service behind an HTTP endpoint.

Configured like promptfoo's HTTP provider or garak's REST generator (see
:mod:`redteam.serving.http_settings`): a platform team points it at its staging endpoint, or at
``redteam serve``. There is nothing to train. Threat model: strict black box; the testbed sees the
ranked ids (and scores where the endpoint returns them) and nothing else, so the victim is
evaluated from its top-k lists (HR/NDCG/MRR@K for K up to the list length, Agreement@K), never
from full-catalog scores, and only attacks that query (extraction) can target it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from redteam.errors import ConfigError
from redteam.serving.http_settings import HttpSettings


class HttpVictim:
    """Remote victim reached over HTTP (``victims: [{name: http, url: ..., headers: ...}]``)."""

    alias: ClassVar[str] = "http"
    Params = HttpSettings
    remote: ClassVar[bool] = True
    family: ClassVar[str] = "recommender"

    def __init__(self, params: HttpSettings | None = None, **overrides: Any) -> None:
        self.params = params or HttpSettings(**overrides)

    def recommender(self, *, journal: Path | None = None, seed: int = 0) -> Any:
        """A client for the endpoint (a context manager; ``journal``: where its answers are kept)."""
        from redteam.serving.http_client import HttpRecommender

        return HttpRecommender(self.params, journal=journal, seed=seed)

    def _not_owned(self, *_: Any, **__: Any) -> Any:
        raise ConfigError("victims.http: a remote victim is neither trained, scored nor saved by the testbed; "
                          "it is only queried")

    fit = score = save = _not_owned

    @classmethod
    def load(cls, path: Path) -> "HttpVictim":
        raise ConfigError(f"victims.http: {path}: a remote victim has no saved model")
