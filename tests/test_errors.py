"""Error handling: exit 3 with a traceback file for internal errors, corrupt cache entries
retrained, malformed saved configs, unsafe names, and the thread count in the run hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from redteam.errors import ComponentError, ConfigError, DataError

SCENARIO = {
    "name": "tiny",
    "dataset": {"name": "synthetic", "users": 60, "items": 40},
    "victims": [{"name": "popularity"}],
    "eval": {"k": [10], "bootstrap": 10},
    "runtime": {"threads": 1},
}


def write_scenario(tmp_path: Path, **change) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, **change}, sort_keys=False))
    return path


def raise_in_load_scenario(monkeypatch, exc: BaseException) -> None:
    """Make ``redteam run`` fail with ``exc`` right after parsing its arguments."""
    import redteam.scenario

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(redteam.scenario, "load_scenario", boom)


# --------------------------------------------------------------------------------------------
# 1. exit codes


def test_internal_error_exits_3_with_a_traceback_file(run_cli, tmp_path: Path, monkeypatch) -> None:
    raise_in_load_scenario(monkeypatch, ComponentError("attacks.x: sent item 0 outside 1..N"))
    result = run_cli("run", write_scenario(tmp_path), "-q")
    assert result.code == 3, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    prefix = "internal error: ComponentError: attacks.x: sent item 0 outside 1..N (traceback: "
    assert result.stderr.startswith(prefix), result.stderr
    saved = Path(result.stderr[len(prefix):].rstrip().removesuffix(")"))
    assert saved.parent == tmp_path / "cache" / "tracebacks" and saved.is_file()
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "ComponentError: attacks.x" in text and "boom" in text


def test_any_other_exception_exits_3(run_cli, tmp_path: Path, monkeypatch) -> None:
    raise_in_load_scenario(monkeypatch, KeyError("params"))
    result = run_cli("run", write_scenario(tmp_path), "-q")
    assert result.code == 3, result
    assert result.stderr.startswith("internal error: KeyError: 'params' (traceback: "), result.stderr


def test_traceback_falls_back_to_the_temp_dir(run_cli, tmp_path: Path, monkeypatch) -> None:
    import tempfile

    not_a_dir = tmp_path / "cache-file"
    not_a_dir.write_text("")
    monkeypatch.setenv("REDTEAM_CACHE_DIR", str(not_a_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    raise_in_load_scenario(monkeypatch, RuntimeError("bug"))
    result = run_cli("run", write_scenario(tmp_path), "-q")
    assert result.code == 3, result
    [saved] = (tmp_path / "tmp" / "redteam-tracebacks").iterdir()
    assert f"(traceback: {saved})" in result.stderr and "RuntimeError: bug" in saved.read_text()


def test_user_errors_and_usage_errors_still_exit_2(run_cli, tmp_path: Path, monkeypatch) -> None:
    raise_in_load_scenario(monkeypatch, ConfigError("x.yaml: api.topk: bad"))
    result = run_cli("run", write_scenario(tmp_path), "-q")
    assert (result.code, result.stderr) == (2, "error: x.yaml: api.topk: bad\n")
    assert run_cli("run").code == 2  # missing argument: click's usage error
    assert not (tmp_path / "cache" / "tracebacks").exists()


# --------------------------------------------------------------------------------------------
# 2. corrupt cache entries are retrained


def tiny_victim():
    """An untrained SASRec with weights (cheap to build, save and load)."""
    from victims.sasrec import SASRec

    victim = SASRec(hidden=8, heads=1, layers=1)
    victim.init_model(20, seed=0)
    return victim


def cached(cache, calls: list[str]):
    """get_or_create of one SASRec entry, counting the calls of create()."""
    from victims.sasrec import SASRec

    def create():
        calls.append("create")
        return tiny_victim(), {"what": "tiny"}

    return cache.get_or_create("sasrec", "k1", create=create, save=lambda v, p: v.save(p), load=SASRec.load)


@pytest.mark.parametrize("damage", ["info-garbage", "info-not-a-mapping", "weights-garbage"])
def test_corrupt_cache_entry_is_retrained_with_one_warning(damage, tmp_path: Path, capsys) -> None:
    from redteam.cache import ModelCache

    cache, calls = ModelCache(tmp_path), []
    assert cached(cache, calls)[2] is False
    assert cached(cache, calls)[2] is True and calls == ["create"]
    entry = cache.entry("sasrec", "k1")
    if damage == "info-garbage":
        (entry / "info.json").write_bytes(b"\x00{not json")
    elif damage == "info-not-a-mapping":
        (entry / "info.json").write_text("[1, 2]")
    else:
        (entry / "model.safetensors").write_bytes(b"garbage")
    capsys.readouterr()
    victim, info, loaded = cached(cache, calls)
    assert loaded is False and calls == ["create", "create"] and info == {"what": "tiny"}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"warning: corrupt cache entry {entry} ("), err
    assert err.endswith("; retraining\n")
    # The retrained entry replaced the corrupt one: the next call loads it, silently.
    assert cached(cache, calls)[2] is True and calls == ["create", "create"]
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------------------------
# 3. a saved victim's config.json


def saved_victim(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    tiny_victim().save(path)
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.pop("params"), "missing key 'params'"),
        (lambda c: c.pop("n_items"), "missing key 'n_items'"),
        (lambda c: c.update(n_items="many"), "n_items: expected a positive integer, got 'many'"),
        (lambda c: c.update(params=[1]), "params: expected a mapping, got list"),
        (lambda c: c["params"].update(hidden="wide"), "params.hidden: Input should be a valid integer"),
        (lambda c: c["params"].update(hiden=8), "params.hiden: Extra inputs are not permitted"),
    ],
)
def test_malformed_config_is_one_line_data_error(change, expected, tmp_path: Path) -> None:
    from victims.sasrec import SASRec

    path = saved_victim(tmp_path)
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError) as info:
        SASRec.load(path)
    message = str(info.value)
    assert message.startswith(f"{path / 'config.json'}: ") and expected in message and "\n" not in message


def test_intact_config_still_loads(tmp_path: Path) -> None:
    from victims.sasrec import SASRec

    loaded = SASRec.load(saved_victim(tmp_path))
    assert loaded.n_items == 20 and loaded.params.hidden == 8


# --------------------------------------------------------------------------------------------
# 5. names that become path parts


def scenario_error(**change) -> str:
    from redteam.scenario import build_scenario

    with pytest.raises(ConfigError) as info:
        build_scenario({**SCENARIO, **change}, source="x.yaml")
    assert "\n" not in str(info.value)
    return str(info.value)


RULE = "is not a safe name (letters, digits and . _ - + @, not starting with '.' and without '..')"


@pytest.mark.parametrize(
    ("change", "where", "value"),
    [
        ({"victims": [{"name": "popularity", "label": "../../x"}]}, "victims.0.label", "../../x"),
        ({"attacks": [{"name": "extraction.random", "label": "../../x"}]}, "attacks.0.label", "../../x"),
        ({"attacks": [{"name": "extraction.random", "label": ".hidden"}]}, "attacks.0.label", ".hidden"),
        ({"attacks": [{"name": "extraction.random", "label": "a\\b"}]}, "attacks.0.label", "a\\b"),
        ({"defenses": [{"name": "../none"}]}, "defenses.0.name", "../none"),
        ({"name": "..tiny"}, "name", "..tiny"),
        ({"name": ".tiny"}, "name", ".tiny"),
        ({"name": "a/b"}, "name", "a/b"),
    ],
)
def test_unsafe_names_are_refused(change, where, value) -> None:
    assert f"{where}: {value!r} {RULE}" in scenario_error(**change)


def test_an_ablation_must_name_another_attack_with_vs() -> None:
    attacks = [{"name": "extraction.random", "label": "full"}, {"name": "extraction.random", "label": "half", "vs": "ful"}]
    assert "attacks[1].vs: 'ful' is not another attack's label (did you mean 'full'?)" in scenario_error(attacks=attacks)
    attacks[1]["vs"] = "half"
    assert "attacks[1].vs: 'half' is not another attack's label" in scenario_error(attacks=attacks)


def test_safe_names_pass() -> None:
    from redteam.scenario import build_scenario

    sc = build_scenario({**SCENARIO, "name": "tiny.v2+x@y", "victims": [{"name": "popularity", "label": "pop_1.v2-a+b@c"}]})
    assert sc.victims[0].label() == "pop_1.v2-a+b@c"


@pytest.mark.parametrize("section", ["victims", "attacks"])
def test_unsafe_label_exits_2_and_writes_nothing(section, run_cli, tmp_path: Path) -> None:
    component = {"victims": {"name": "popularity"}, "attacks": {"name": "extraction.random"}}[section]
    path = write_scenario(tmp_path, **{section: [{**component, "label": "../../x"}]})
    result = run_cli("run", path, "--out", tmp_path / "runs", "-q")
    assert result.code == 2, result
    assert result.stderr == f"error: {path}: {section}.0.label: '../../x' {RULE}\n"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()
    assert not (tmp_path.parent / "x").exists()


# --------------------------------------------------------------------------------------------
# 6. the resolved thread count is part of the run hash


def test_fingerprint_includes_the_resolved_thread_count() -> None:
    from redteam.environment import default_threads
    from redteam.scenario import build_scenario

    def fingerprint(*overrides: str) -> str:
        return build_scenario(SCENARIO, list(overrides)).fingerprint()

    assert fingerprint("runtime.threads=1") != fingerprint("runtime.threads=2")
    assert fingerprint("runtime.threads=null") == fingerprint(f"runtime.threads={default_threads()}")
    assert fingerprint("runtime.threads=2", "output.dir=elsewhere", "runtime.cache=false") == fingerprint("runtime.threads=2")
