"""Scenario files: validation errors name the key path, layering, and --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from redteam.errors import ConfigError, DataError
from redteam.scenario import build_scenario, load_scenario


def base() -> dict:
    return {
        "name": "t",
        "dataset": {"name": "synthetic", "users": 50, "items": 30},
        "victims": [{"name": "popularity"}, {"name": "sasrec", "epochs": 2}, {"name": "gru4rec"}],
    }


def error_of(raw: dict, overrides: list[str] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        build_scenario(raw, overrides, source="x.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_and_layering() -> None:
    sc = build_scenario(base())
    assert sc.api.topk == 100 and sc.api.budget is None and not sc.api.expose_scores
    assert sc.eval.k == [10, 50] and sc.run_seeds == [0]
    assert [d.name for d in sc.defenses] == ["none"]
    single = build_scenario({"name": "t", "victim": {"name": "sasrec", "hidden": 8}, "seeds": [1, 2]})
    assert [(v.name, v.options) for v in single.victims] == [("sasrec", {"hidden": 8})]
    assert single.run_seeds == [1, 2]


def test_fingerprint_ignores_output_and_runtime_but_threads() -> None:
    fp = build_scenario(base()).fingerprint()
    assert build_scenario(base(), ["output.dir=elsewhere", "runtime.cache=false"]).fingerprint() == fp
    assert build_scenario(base(), ["runtime.threads=9"]).fingerprint() != fp  # threads change numbers
    assert build_scenario(base(), ["victims.1.epochs=3"]).fingerprint() != fp
    assert build_scenario(base(), ["seed=1"]).fingerprint() != fp


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"victimz": []}, "victimz: unknown key (did you mean 'victims'?)"),
        ({"api": {"topkk": 5}}, "api.topkk: unknown key (did you mean 'topk'?)"),
        ({"eval": {"bootstrapp": 5}}, "eval.bootstrapp: unknown key (did you mean 'bootstrap'?)"),
        ({"api": {"topk": "many"}}, "api.topk: Input should be a valid integer"),
        ({"api": {"budget": -1}}, "api.budget: Input should be greater than or equal to 0 (got -1)"),
        ({"eval": {"k": [10, 0]}}, "eval: every cut-off must be >= 1"),
        ({"gates": [{"metric": "ndcg@10"}]}, "gates.0: a gate needs min, max, max_drop or min_drop"),
        ({"gates": [{"metric": "ndcg@10", "min_drop": 0.1}]}, "gates.0: min_drop and min_drop_vs go together"),
        ({"name": "a b"}, "name: 'a b' is not a safe name"),
    ],
)
def test_scenario_errors_name_the_key_path(change: dict, expected: str) -> None:
    raw = base()
    raw.update(change)
    message = error_of(raw)
    assert message.startswith("x.yaml: ")
    assert expected in message


def test_missing_and_duplicate_victims() -> None:
    raw = base()
    raw.pop("victims")
    assert "victims: required key is missing" in error_of(raw)
    raw = base()
    raw["victim"] = {"name": "sasrec"}
    assert "either 'victim' or 'victims'" in error_of(raw)


def test_unknown_victim_name_suggests_one() -> None:
    raw = base()
    raw["victims"][1] = {"name": "sasrek"}
    message = error_of(raw)
    assert message.startswith("victims[1].name: unknown victim 'sasrek' (did you mean 'sasrec'?)")
    assert "known: bert4rec, gru4rec, hstu, http, narm, popularity, ranker.causal_lm, ranker.embedding, sasrec, text_sasrec" in message


@pytest.mark.parametrize(
    ("victim", "expected"),
    [
        ({"name": "sasrec", "epochs": -2}, "victims[0]: epochs: Input should be greater than or equal to 0"),
        ({"name": "sasrec", "hiden": 8}, "victims[0]: hiden: unknown key (did you mean 'hidden'?)"),
        ({"name": "sasrec", "hidden": "wide"}, "victims[0]: hidden: Input should be a valid integer"),
        ({"name": "popularity", "epochs": 3}, "victims[0]: epochs: unknown key"),
    ],
)
def test_bad_victim_parameter(victim: dict, expected: str) -> None:
    raw = base()
    raw["victims"] = [victim]
    assert error_of(raw).startswith(expected)


def test_set_victim_applies_to_every_victim_that_takes_it() -> None:
    sc = build_scenario(base(), ["victim.epochs=3", "victim.hidden=8"])
    assert [v.options for v in sc.victims] == [{}, {"epochs": 3, "hidden": 8}, {"epochs": 3, "hidden": 8}]
    assert "no victim takes 'epoch' (did you mean 'epochs'?)" in error_of(base(), ["victim.epoch=3"])
    single = {"name": "t", "victim": {"name": "sasrec", "epochs": 9}}
    assert build_scenario(single, ["victim.epochs=3"]).victims[0].options == {"epochs": 3}


def test_set_one_victim_and_nested_keys() -> None:
    sc = build_scenario(base(), ["victims.1.epochs=3", "api.topk=7", "eval.k=[5, 20]", "api.expose_scores=true"])
    assert [v.options for v in sc.victims] == [{}, {"epochs": 3}, {}]
    assert sc.api.topk == 7 and sc.eval.k == [5, 20] and sc.api.expose_scores is True
    assert [v.options for v in build_scenario(base(), ["victims.*.label=x"]).victims][1] == {"epochs": 2, "label": "x"}
    # Overrides are validated like the file: a bad value names the key path.
    assert "api.topk: Input should be a valid integer" in error_of(base(), ["api.topk=many"])
    assert "victims[2]: epochs: Input should be greater than or equal to 0" in error_of(base(), ["victims.2.epochs=-1"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("victims.5.epochs=3", "--set victims.5.epochs: '5' is not an index of a list with 3 entries"),
        ("novalue", "--set 'novalue': expected KEY.PATH=VALUE"),
        ("api.topk=[unclosed", "value is not valid YAML"),
        ("name.x=1", "--set name.x: 'x' is inside a value that is not a mapping"),
        ("apii.topk=3", "apii: unknown key (did you mean 'api'?)"),
    ],
)
def test_bad_overrides(override: str, expected: str) -> None:
    assert expected in error_of(base(), [override])


def test_raw_input_is_not_modified() -> None:
    raw = base()
    build_scenario(raw, ["victim.epochs=3", "api.topk=7"])
    assert raw == base()


# --------------------------------------------------------------------------------------------
# Files


def test_load_scenario_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base()))
    sc = load_scenario(path, ["victims.0.label=pop"])
    assert sc.name == "t" and sc.victims[0].label() == "pop"


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: t\nvictims: [{name: sasrec}\napi: {topk: 3}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+: invalid YAML") as info:
        load_scenario(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_scenario_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"list\.yaml: a scenario must be a mapping"):
        load_scenario(path)


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scenario file not found: .*missing.yaml"):
        load_scenario(tmp_path / "missing.yaml")


def test_dataset_path_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from redteam.data.registry import load_dataset

    raw = base()
    raw["dataset"] = {"name": "csv"}  # a file format: the path is required up front
    with pytest.raises(ConfigError, match=r"dataset\.path: required for dataset 'csv'"):
        build_scenario(raw)
    raw["dataset"] = {"name": "amazon-beuty"}
    with pytest.raises(ConfigError, match=r"dataset\.name: unknown dataset 'amazon-beuty'; did you mean 'amazon-beauty'"):
        build_scenario(raw)
    raw["dataset"] = {"name": "synthetic", "path": str(tmp_path)}
    with pytest.raises(ConfigError, match=r"dataset\.path: the synthetic dataset"):
        build_scenario(raw)
    # A named real data set without a path validates, and fails when the data is loaded.
    monkeypatch.setenv("REDTEAM_DATA_DIR", str(tmp_path / "empty"))
    raw["dataset"] = {"name": "amazon-beauty"}
    sc = build_scenario(raw)
    with pytest.raises(DataError, match="dataset 'amazon-beauty': no data folder; set dataset.path or REDTEAM_DATA_DIR"):
        load_dataset(sc.dataset, seed=0)
    raw["dataset"] = {"name": "sequence-file", "path": str(tmp_path / "nope.txt")}
    sc = build_scenario(raw)
    with pytest.raises(DataError, match="path does not exist: .*nope.txt"):
        load_dataset(sc.dataset, seed=0)


SHIPPED = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_scenario_validates(path: Path) -> None:
    """Each file under scenarios/ loads with every component's parameters checked (no data read)."""
    scenario = load_scenario(path)
    assert scenario.name and (scenario.attacks or scenario.victims)


def test_defense_attacker_seeds_must_be_among_the_runs() -> None:
    raw = {**base(), "attacker": {"seeds": [0, 1, 2]}, "attacks": [{"name": "poisoning.random"}]}
    ok = build_scenario({**raw, "defenses": [{"name": "none"}, {"name": "apr", "attacker_seeds": [1]}]})
    assert ok.defenses[1].options["attacker_seeds"] == [1]
    assert "attacker_seeds: [5] not among the scenario's attacker seeds [0, 1, 2]" in error_of(
        {**raw, "defenses": [{"name": "apr", "attacker_seeds": [1, 5]}]})
    assert "defenses[0].attacker_seeds: expected a non-empty list" in error_of({**raw, "defenses": [{"name": "apr", "attacker_seeds": 1}]})
    assert "always cover every attacker seed" in error_of({**raw, "defenses": [{"name": "none", "attacker_seeds": [0]}]})
    chain = [{"name": "extraction.random", "label": "steal"},
             {"name": "poisoning.surrogate", "surrogate": {"from": "steal", "through": "noisy"}}]
    limited = {**raw, "attacks": chain, "defenses": [{"name": "rank_noise", "label": "noisy", "attacker_seeds": [1]}]}
    assert "surrogate.through: 'noisy' runs on some attacker seeds only" in error_of(limited)
    # without attacker.seeds every run seed is its own attacker seed
    assert build_scenario({**base(), "seeds": [4, 5], "attacks": [{"name": "poisoning.random"}],
                           "defenses": [{"name": "apr", "attacker_seeds": [5]}]}).attack_seeds == [4, 5]


def test_a_gate_on_a_clean_defended_row_needs_defend_clean() -> None:
    raw = {**base(), "attacks": [{"name": "poisoning.random"}], "defenses": [{"name": "none"}, {"name": "apr"}],
           "poisoning": {"defend_clean": False}}
    gate = {"metric": "ndcg@10", "attack": "none", "defense": "apr", "max_drop_vs": "none", "max_drop": 0.1}
    assert "gates[0].attack: poisoning.defend_clean is false, so defense 'apr'" in error_of({**raw, "gates": [gate]})
    assert build_scenario({**raw, "gates": [{**gate, "attack": "poisoning.random"}]}).poisoning.defend_clean is False


def test_defenses_that_need_this_process_or_a_trainable_victim_are_refused_up_front() -> None:
    raw = {**base(), "attacks": [{"name": "extraction.random"}]}
    assert "'query_stream' reads the attacker's query stream in this process" in error_of(
        {**raw, "api": {"transport": "http"}, "defenses": [{"name": "query_stream"}]})
    remote = {"name": "http", "url": "http://127.0.0.1:9/v1/recommend", "n_items": 30, "max_k": 10}
    assert "'aow' is trained into the victim, which a remote victim (http) cannot be" in error_of(
        {**raw, "victims": [remote], "defenses": [{"name": "aow"}]})
    build_scenario({**raw, "defenses": [{"name": "none"}, {"name": "query_stream"}, {"name": "aow"}]})


def test_listing_attacks_over_http_are_refused_up_front() -> None:
    raw = {**base(), "attacker": {"few_shot_ratio": 0.1, "item_text": True}, "attacks": [{"name": "listing.greedy"}]}
    assert ("api.transport: 'listing.greedy' queries a copy of the victim that its edits reach in this process"
            in error_of({**raw, "api": {"transport": "http"}}))
    build_scenario(raw)
