"""AOW watermarking: how the secret is drawn, the verification test's arithmetic, and that a
watermark trained into SASRec is found in it and not in the same model trained without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from defenses.aow import AOW
from defenses.base import DefenseInputs


def id_oracle(n_items: int):
    """Scores = item id: the lowest-ranked items are the smallest ids."""
    def score(histories):
        row = torch.arange(n_items + 1, dtype=torch.float32)
        row[0] = -torch.inf
        return row.repeat(len(histories), 1)
    return score


def knowing(secret: list[list[int]], n_items: int):
    """A suspect that learned the secret: the next watermark item on top after every prefix."""
    following = {tuple(s[:t]): s[t] for s in secret for t in range(1, len(s))}

    def score(histories):
        out = torch.zeros(len(histories), n_items + 1)
        out[:, 0] = -torch.inf
        for b, h in enumerate(histories):
            if tuple(int(x) for x in h) in following:
                out[b, following[tuple(int(x) for x in h)]] = 1.0
        return out
    return score


def inputs(n_items: int = 200, **extra) -> DefenseInputs:
    return DefenseInputs(train=[np.array([1, 2, 3])], n_items=n_items, seed=3, item_popularity=np.zeros(n_items + 1),
                         **extra)


def test_the_secret_is_distinct_items_from_the_oracles_bottom_and_seeded() -> None:
    aow = AOW(sequences=3, length=8, bottom=0.1, copies=4)
    plan = aow.prepare(inputs(oracle=id_oracle(200)))
    secret = plan.info["watermark"]
    assert [len(s) for s in secret] == [8, 8, 8]
    items = [i for s in secret for i in s]
    assert len(set(items)) == len(items) and all(1 <= i <= 200 for i in items)
    # every item after a start comes from the 20 lowest-scored ids not used yet (<= 20 + 24 used)
    assert all(i <= 20 + len(items) for s in secret for i in s[1:])
    assert len(plan.extra_train) == 12 and all(list(x) == secret[j // 4] for j, x in enumerate(plan.extra_train))
    assert plan.info["verification_queries"] == aow.queries_per_check() == 3 * 7
    assert AOW(sequences=3, length=8, bottom=0.1).prepare(inputs(oracle=id_oracle(200))).info["watermark"] == secret


def test_prepare_refuses_without_an_oracle_or_beyond_the_catalog() -> None:
    with pytest.raises(ValueError, match="oracle"):
        AOW().prepare(inputs())
    with pytest.raises(ValueError, match="catalog"):
        AOW(sequences=11, length=20).prepare(inputs(oracle=id_oracle(200)))
    with pytest.raises(ValueError, match="length"):
        AOW(length=60).prepare(inputs(oracle=id_oracle(200)))


def test_verification_arithmetic_by_hand() -> None:
    # one sequence of 4 items, prefixes of 1..3 items: 3 queries, k = 10 of 100 items
    secret = [[5, 9, 13, 17]]
    aow = AOW(k=10, alpha=0.01)
    found = aow.verify(knowing(secret, 100), secret)
    chance = np.mean([10 / 99, 10 / 98, 10 / 97])
    assert (found.hits, found.queries, found.k) == (3, 3, 10)
    assert found.chance == pytest.approx(chance)
    assert found.p_value == pytest.approx(chance ** 3)  # P(3 hits of 3)
    assert found.detected and found.hit_rate == 1.0
    # the id oracle puts the highest ids on top: none of these small ids is in its top 10
    innocent = aow.verify(id_oracle(100), secret)
    assert innocent.hits == 0 and innocent.p_value == pytest.approx(1.0) and not innocent.detected


def test_one_hit_in_nineteen_is_not_evidence_but_five_are() -> None:
    secret = [list(range(1, 21))]
    aow = AOW(k=10, alpha=0.01)
    learned = knowing(secret, 500)

    def partly(hits: int):
        def score(histories):
            out = learned(histories)
            out[hits:] = 0.0  # only the first `hits` prefixes continue the secret
            out[:, 0] = -torch.inf
            out[hits:, 400:] = 1.0  # the rest put unrelated items on top
            return out
        return score

    assert not aow.verify(partly(1), secret).detected
    assert aow.verify(partly(5), secret).detected


def test_a_trained_watermark_is_found_in_its_model_and_not_in_the_clean_twin(tiny_split, one_thread) -> None:
    from victims.sasrec import SASRec

    n_items = tiny_split.dataset.n_items
    valid = (tiny_split.valid_histories(), tiny_split.valid_targets())
    clean = SASRec(hidden=32, epochs=15, patience=15, lr=3e-3)
    clean.fit(tiny_split.train, valid, n_items=n_items, seed=0)
    aow = AOW(length=12, copies=30)
    plan = aow.prepare(inputs(n_items=n_items, oracle=clean.score))
    secret = plan.info["watermark"]
    marked = SASRec(hidden=32, epochs=15, patience=15, lr=3e-3)
    marked.fit([*tiny_split.train, *plan.extra_train], valid, n_items=n_items, seed=0)
    found = aow.verify(marked.score, secret)
    assert found.detected and found.hit_rate >= 0.5, found
    innocent = aow.verify(clean.score, secret)
    assert not innocent.detected and innocent.hit_rate <= 0.1, innocent


@pytest.mark.parametrize("transport", ["inprocess", "http"])
def test_an_extraction_scenario_verifies_every_suspect(run_cli, tmp_path, transport) -> None:
    import json

    import yaml

    scenario = {
        "name": "wm", "seed": 3, "dataset": {"name": "synthetic", "users": 300, "items": 150},
        "victim": {"name": "sasrec", "epochs": 15, "patience": 15, "hidden": 32, "lr": 0.003, "max_len": 20},
        "api": {"topk": 20, "budget": 1500, "transport": transport}, "attacker": {"few_shot_ratio": 0.1},
        "attacks": [{"name": "extraction.autoregressive", "distill_epochs": 2, "curve": [], "length": 15}],
        "defenses": [{"name": "aow", "length": 12, "copies": 30, "controls": ["sasrec"]}, {"name": "none"}],
        "eval": {"k": [10], "bootstrap": 0}, "runtime": {"threads": 1},
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    result = run_cli("run", path, "-q", "--out", tmp_path / "runs")
    assert result.code == 0, result.stderr
    rows = {(r["attack"], r["defense"]): r for r in
            json.loads(next((tmp_path / "runs").glob("wm-*/results.json")).read_text())["rows"]}
    marked = rows[("none", "aow")]
    info = marked["info"]["watermark"][0]
    assert info["verification_queries"] == 11 and info["watermarked_victim"]["detected"]
    assert [c["detected"] for c in info["controls"]] == [False, False]  # the clean victim, one independent SASRec
    assert marked["metrics"]["watermark_fpr"]["value"] == 0.0 and "ndcg@10" in marked["metrics"]
    stolen = rows[("extraction.autoregressive", "aow")]
    assert {"watermark_detected", "watermark_false_alarm", "agreement@10"} <= set(stolen["metrics"])
    assert stolen["metrics"]["watermark_false_alarm"]["value"] == 0.0  # the clean endpoint's surrogate is innocent
    assert stolen["info"]["watermark"][0]["stolen"]["queries"] == 11
