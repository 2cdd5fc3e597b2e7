"""How to reach a recommender behind an HTTP endpoint (the ``http`` victim's parameters).

The keys follow what promptfoo's HTTP provider and garak's REST generator users already write:
a URL and method, headers whose secrets come from the environment (``{{env.NAME}}``), a JSON body
template with a placeholder for the batch of histories (``"{{histories}}"``) and for the list
length (``"{{k}}"``), a JSON path to the returned ids (and scores), and batch size, timeout,
concurrency, retries with exponential backoff honouring ``Retry-After``, and a query budget.
The defaults speak the protocol of ``redteam serve``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from redteam.errors import ConfigError
from redteam.params import Params
from redteam.serving.response_path import parse_path

HISTORIES, K = "{{histories}}", "{{k}}"
_ENV = re.compile(r"\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VISIBLE = re.compile(r"[\x20-\x7e]*")


class HttpSettings(Params):
    url: str = Field("http://127.0.0.1:8000/v1/recommend", description="where a batch of histories is POSTed")
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every request; {{env.NAME}} reads a secret")
    body: dict[str, Any] = Field(default_factory=lambda: {"histories": HISTORIES, "k": K},
                                 description='JSON body template; "{{histories}}" and "{{k}}" are replaced by values')
    items_path: str = Field("$.items", description="JSON path to the ranked ids, one list per history")
    scores_path: str | None = Field(None, description="JSON path to their scores (None: not read)")
    info_url: str | None = Field(None, description="GET for n_items and topk when they are not given "
                                                   "(default: the url with /v1/recommend -> /v1/info)")
    n_items: int | None = Field(None, ge=1, description="catalog size (ids 1..n_items)")
    max_k: int | None = Field(None, ge=1, description="longest list the endpoint returns")
    batch_size: int = Field(64, ge=1, description="histories per request")
    timeout_s: float = Field(20.0, gt=0)
    concurrency: int = Field(4, ge=1, le=64, description="requests in flight at once")
    max_retries: int = Field(4, ge=0, le=20)
    backoff_s: float = Field(0.5, ge=0, description="first retry wait; doubles each retry, with jitter")
    max_backoff_s: float = Field(30.0, ge=0, description="longest wait, also for a Retry-After")
    retry_status: list[int] = Field(default_factory=lambda: [408, 409, 425, 429, 500, 502, 503, 504])
    idempotency_header: str | None = Field("Idempotency-Key", description="a stable key per request, so a "
                                           "retried request is not charged twice (None: not sent)")
    budget: int | None = Field(None, ge=1, description="client-side cap on queries (histories) asked")

    @field_validator("url", "info_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("items_path", "scores_path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_path(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _template_has_histories(self) -> "HttpSettings":
        if not _mentions(self.body, HISTORIES):
            raise ValueError(f'body: the template needs the placeholder "{HISTORIES}" where the histories go')
        return self

    def info_endpoint(self) -> str | None:
        if self.info_url is not None:
            return self.info_url
        return self.url[: -len("/v1/recommend")] + "/v1/info" if self.url.endswith("/v1/recommend") else None

    def resolved_headers(self) -> dict[str, str]:
        """The headers with ``{{env.NAME}}`` replaced from the environment (a missing one is an error,
        and so is a value HTTP cannot carry; the message never shows the value)."""
        resolved = with_secrets(self.headers, "victims.http.headers")
        for name, value in resolved.items():
            if not _VISIBLE.fullmatch(value):
                raise ConfigError(f"victims.http.headers.{name}: the value{_env_names(self.headers[name])} holds a "
                                  "character a header cannot carry (a newline, a control or non-ASCII character)")
        return resolved

    def fingerprint(self) -> str:
        """What shapes the answers a journal keeps: the endpoint, the request template, the paths."""
        return json.dumps([self.method, self.url, self.body, self.items_path, self.scores_path], sort_keys=True)

    def resolved_body(self) -> dict[str, Any]:
        return with_secrets(self.body, "victims.http.body")


def with_secrets(value: Any, where: str) -> Any:
    """``value`` with every ``{{env.NAME}}`` in its strings read from the environment."""
    if isinstance(value, dict):
        return {name: with_secrets(v, f"{where}.{name}") for name, v in value.items()}
    if isinstance(value, list):
        return [with_secrets(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def secret(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(secret, value)


def _env_names(template: str) -> str:
    names = _ENV.findall(template)
    return f" (from {', '.join(names)})" if names else ""


def fill_body(template: Any, histories: list[list[int]], k: int) -> Any:
    """The template with its placeholders replaced (a value that is exactly a placeholder becomes the
    value itself, not a string)."""
    if isinstance(template, dict):
        return {name: fill_body(v, histories, k) for name, v in template.items()}
    if isinstance(template, list):
        return [fill_body(v, histories, k) for v in template]
    if template == HISTORIES:
        return histories
    if template == K:
        return k
    return template


def _mentions(template: Any, placeholder: str) -> bool:
    if isinstance(template, dict):
        return any(_mentions(v, placeholder) for v in template.values())
    if isinstance(template, list):
        return any(_mentions(v, placeholder) for v in template)
    return template == placeholder
