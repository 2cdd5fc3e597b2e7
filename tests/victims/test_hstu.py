"""HSTU (Zhai et al., ICML 2024): the layer's arithmetic by hand, causality, batch invariance, time buckets."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from redteam.data.dataset import LeaveOneOutSplit, SequenceDataset
from redteam.training import EventTimes
from victims.hstu import HSTU, HSTULayer, HSTUModel, HSTUParams, time_gap_buckets


def test_time_gap_buckets_by_hand():
    times = torch.tensor([[0, 1, 2, 100, 100 + 10**6]])
    buckets = time_gap_buckets(times, 128)[0]
    # floor(log(max(1, gap)) / 0.301): gap 0 or 1 -> 0; 2 -> floor(.693/.301) = 2; 100 -> floor(4.605/.301) = 15
    assert buckets[0, 0] == 0 and buckets[1, 0] == 0 and buckets[2, 0] == 2 and buckets[3, 0] == 15
    assert buckets[4, 3] == math.floor(math.log(10**6) / 0.301)  # 45
    assert time_gap_buckets(times, 10)[0, 4, 0] == 9  # clamped to the last bucket
    assert torch.equal(buckets, buckets.T)


def test_an_unknown_time_gets_the_unknown_gap_bucket():
    nan = float("nan")
    buckets = time_gap_buckets(torch.tensor([[0.0, nan, 100.0]]), 16)[0]
    assert buckets[1].tolist() == [16, 16, 16] and buckets[:, 1].tolist() == [16, 16, 16]
    assert buckets[2, 0] == 15 and buckets[0, 0] == 0


def test_layer_matches_the_published_formula_computed_by_hand():
    torch.manual_seed(0)
    hidden, length = 4, 3
    layer = HSTULayer(hidden, heads=1, max_len=5, time_buckets=8, dropout=0.0).eval()
    with torch.no_grad():
        layer.position_bias.copy_(torch.randn(9))
        layer.time_bias.copy_(torch.randn(9))
    x = torch.randn(1, length, hidden)
    allowed = torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 1, 1]]).unsqueeze(0)  # first position is padding
    times = torch.tensor([[0, 5, 50]])
    got = layer(x, allowed, time_gap_buckets(times, 8))

    u, v, q, k = F.silu(layer.uvqk(layer.norm_in(x[0]))).split(hidden, dim=-1)
    a = torch.zeros(length, hidden)
    for i in range(length):
        n = sum(allowed[0, i].tolist())
        for j in range(length):
            if allowed[0, i, j]:
                gap = max(1, abs(int(times[0, i]) - int(times[0, j])))
                rab = layer.position_bias[i - j + 4] + layer.time_bias[min(7, math.floor(math.log(gap) / 0.301))]
                a[i] += F.silu(q[i] @ k[j] + rab) / n * v[j]
    expected = x[0] + layer.out(u * layer.norm_attn(a))
    assert torch.allclose(got[0], expected, atol=1e-5)


@pytest.fixture
def model():
    torch.manual_seed(1)
    return HSTUModel(30, HSTUParams(hidden=8, max_len=10, dropout=0.0)).eval()


def test_no_position_sees_the_future(model):
    seqs = torch.tensor([[0, 3, 4, 5, 6]])
    changed = torch.tensor([[0, 3, 4, 5, 29]])
    assert torch.allclose(model.encode(seqs)[:, :4], model.encode(changed)[:, :4], atol=1e-6)
    assert not torch.allclose(model.encode(seqs)[:, 4], model.encode(changed)[:, 4])


def test_an_answer_does_not_depend_on_the_other_histories_of_its_batch(model):
    alone = model.final_hidden(torch.tensor([[3, 4, 5]]))
    padded = model.final_hidden(torch.tensor([[0, 0, 0, 3, 4, 5], [7, 8, 9, 10, 11, 12]]))[:1]
    assert torch.allclose(alone, padded, atol=1e-6)


def test_times_change_the_answer_and_no_times_means_every_gap_unknown(model):
    with torch.no_grad():
        for layer in model.layers:
            layer.time_bias.copy_(torch.linspace(-2, 2, layer.time_bias.numel()))
    seqs = torch.tensor([[3, 4, 5]])
    close, far = torch.tensor([[0.0, 10, 20]]), torch.tensor([[0.0, 10, 10**7]])
    assert not torch.allclose(model.final_hidden(seqs, close), model.final_hidden(seqs, far))
    unknown = torch.full((1, 3), float("nan"))
    assert torch.allclose(model.final_hidden(seqs), model.final_hidden(seqs, unknown), atol=1e-6)


def test_a_timed_answer_does_not_depend_on_its_batch():
    torch.manual_seed(3)
    victim = HSTU(HSTUParams(hidden=8, max_len=10, dropout=0.0))
    victim.init_model(30, seed=0)
    with torch.no_grad():
        for layer in victim.model.layers:
            layer.time_bias.normal_()
    histories = [np.array([3, 4, 5]), np.array([7, 8, 9, 10, 11, 12])]
    times = [np.array([0.0, 50, 5000]), np.array([1.0, 2, 3, 4, 5, 6])]
    alone = victim.score(histories[:1], times=times[:1])
    batched = victim.score(histories, times=times)[:1]
    untimed = victim.score(histories[:1])
    assert torch.allclose(alone, batched, atol=1e-5) and not torch.allclose(alone, untimed)


def test_the_trainer_feeds_event_times_and_hides_some():
    """With times, the gap buckets the data contain get gradient; without, only the unknown one."""
    rng = np.random.default_rng(0)
    train = [rng.integers(1, 30, size=8) for _ in range(40)]
    stamps = [np.cumsum(rng.integers(1, 10**5, size=8)).astype(np.float64) for _ in range(40)]
    params = HSTUParams(hidden=8, max_len=10, dropout=0.0, epochs=2, patience=2, batch_size=16, time_dropout=0.5)
    timed, untimed = HSTU(params), HSTU(params)
    timed.fit(train, None, n_items=30, seed=0, times=EventTimes(train=stamps))
    untimed.fit(train, None, n_items=30, seed=0)
    moved = timed.model.layers[0].time_bias.detach()
    assert (moved[:-1] != 0).sum() >= 3 and moved[-1] != 0  # known gaps and, from hidden users, the unknown one
    assert torch.count_nonzero(untimed.model.layers[0].time_bias.detach()[:-1]) == 0


def test_the_split_keeps_event_times_aligned():
    seqs = [np.array([1, 2, 3, 4]), np.array([5, 6])]
    stamps = [np.array([10, 20, 30, 40]), np.array([1, 2])]
    split = LeaveOneOutSplit.of(SequenceDataset("t", seqs, 6, timestamps=stamps))
    assert [t.tolist() for t in split.train_times] == [[10, 20], [1, 2]]
    assert [t.tolist() for t in split.valid_times()] == [[10, 20]]
    assert [t.tolist() for t in split.test_times()] == [[10, 20, 30]]
    assert LeaveOneOutSplit.of(SequenceDataset("t", seqs, 6)).test_times() is None


def test_normalized_scores_are_cosines_over_the_temperature():
    torch.manual_seed(2)
    m = HSTUModel(20, HSTUParams(hidden=8, max_len=6, dropout=0.0, normalize=True, temperature=0.1)).eval()
    logits = m.logits(m.final_hidden(torch.tensor([[1, 2, 3]])))
    assert logits[0, 1:].abs().max() <= 10.0 + 1e-4 and logits[0, 0] == float("-inf")


def test_hstu_learns_the_synthetic_shop(shop_quality):
    """A few epochs on the 300-item shop beat popularity clearly (the full Beauty table is a benchmark)."""
    seq, pop, _ = shop_quality(HSTU(HSTUParams(epochs=15, patience=3, lr=3e-3, hidden=32)))
    assert seq > 2 * pop and seq - pop > 0.08, (seq, pop)


def test_hstu_is_served_stolen_with_a_same_architecture_surrogate_and_cached(run_steal):
    from redteam.reports.summary import evaluation_notes

    code, results, first = run_steal("hstu")
    assert code == 0, first
    clean, stolen = results["rows"]
    assert clean["victim"] == "hstu" and clean["info"]["fit"][0]["loss"] == "ce"
    assert clean["info"]["event_times"].startswith("the data set has no timestamps: relative-position bias only")
    assert ("hstu", clean["info"]["event_times"]) in evaluation_notes(results)  # stated in every report
    assert stolen["attack"] == "extraction.fewshot" and stolen["info"]["extraction"][0]["surrogate"] == "hstu"
    assert 0 < stolen["metrics"]["agreement@10"]["value"] <= 1
    code, again, _ = run_steal("hstu", out="again")
    assert code == 0 and again["rows"][0]["info"]["fit"][0]["cached"]


def test_a_run_on_timestamped_data_reports_timed_and_api_quality(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    lines = ["user,item,timestamp"]
    for user in range(120):
        clock = float(rng.integers(0, 10**6))
        for item in (rng.integers(1, 40, size=int(rng.integers(4, 9))) + user % 3):
            clock += float(rng.choice([30, 86400]))
            lines.append(f"u{user},i{item},{clock:.0f}")
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "s.yaml").write_text(
        "name: timed\nseed: 1\n"
        f"dataset: {{name: csv, path: {tmp_path / 'events.csv'}}}\n"
        "victim: {name: hstu, epochs: 2, hidden: 8}\neval: {k: [10], bootstrap: 20}\n")
    result = run_cli("run", tmp_path / "s.yaml", "--out", tmp_path / "runs", "-q")
    assert result.code == 0, result
    [run_dir] = (tmp_path / "runs").iterdir()
    rows = {r["victim"]: r for r in json.loads((run_dir / "results.json").read_text())["rows"]}
    assert set(rows) == {"hstu", "hstu (api, no times)"}
    assert "event times" in rows["hstu"]["info"]["event_times"] and rows["hstu"]["info"]["fit"][0]["event_times"]
    assert rows["hstu"]["metrics"]["ndcg@10"]["n"] == rows["hstu (api, no times)"]["metrics"]["ndcg@10"]["n"] > 100
