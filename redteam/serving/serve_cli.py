"""``redteam serve``: settings from a YAML file and options, checked before the model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redteam.errors import ConfigError


def serve_settings(config: Path | None, overrides: dict[str, Any], defenses: list[str]) -> Any:
    import yaml
    from pydantic import ValidationError

    from redteam.overrides import describe_error
    from redteam.serving.serve_settings import ServeSettings

    data: dict[str, Any] = {}
    if config is not None:
        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"--config {config}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config {config}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--config {config}: expected a mapping of settings")
    data.update({k: v for k, v in overrides.items() if v is not None})
    for i, text in enumerate(defenses):
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError:
            spec = None
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"--defense {text!r}: expected a YAML mapping with a name, e.g. '{{name: ...}}'")
        data.setdefault("defenses", []).append(spec)
    try:
        settings = ServeSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{'--config ' + str(config) if config else 'serve'}: {describe_error(exc, ServeSettings)}") from None
    from redteam.scenario import component_params

    for i, spec in enumerate(settings.defenses):
        component_params("defenses", spec, where=f"defenses[{i}]")
    return settings


def serve_command(source: Path, *, victim: str | None, run_seed: int | None, config: Path | None, keys_file: Path | None,
                  keys_env: str, no_auth: bool, ready_file: Path | None, parent_pid: int | None, threads: int | None,
                  overrides: dict[str, Any], defenses: list[str]) -> None:
    from redteam.environment import configure_torch
    from redteam.serving.keys import load_keys
    from redteam.serving.model_source import load_model, model_folder
    from redteam.serving.serve import run_server, served_recommender

    settings = serve_settings(config, overrides, defenses)
    keys = None if no_auth else load_keys(file=keys_file, env_var=keys_env)
    folder = model_folder(source, victim=victim, seed=run_seed)
    configure_torch(threads)
    model = load_model(folder)
    if settings.topk > model.n_items:
        raise ConfigError(f"--topk {settings.topk}: the catalog has only {model.n_items} items")
    run_server(served_recommender(model, settings), settings, keys=keys, ready_file=ready_file, parent_pid=parent_pid)
