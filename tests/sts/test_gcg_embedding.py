"""GCG against the bi-encoder ranker: the search mechanics and a real effect on a tiny catalog."""

from __future__ import annotations

import pytest
import torch

from attacks.sts.base import STSKnowledge, requests_words, token_counter
from attacks.sts.search import GCGParams, gcg, sample_swaps
from redteam.catalog import Product, with_sts

pytest.importorskip("transformers")

PRODUCTS = [
    Product.of("Aurora Drip 12", description="A 12-cup drip coffee maker with a glass carafe", price="$49", ideal_for="families"),
    Product.of("Pulse Pod", description="Single-serve pod brewer ready in 30 seconds", price="$79", ideal_for="quick cups"),
    Product.of("Barista Pro", description="Semi-automatic espresso machine with a steam wand", price="$399", ideal_for="home baristas"),
    Product.of("Frost Brew", description="Cold brew pitcher with a fine mesh filter", price="$29", ideal_for="iced coffee"),
    Product.of("Trail Press", description="Insulated stainless steel French press", price="$35", ideal_for="camping"),
    Product.of("Moka Classic", description="Aluminium stovetop moka pot", price="$25", ideal_for="strong coffee"),
]
OPTIMISE = ["I want a machine for espresso at home.", "Which coffee maker is good for a family breakfast?",
            "Recommend a brewer for iced coffee in summer.", "What should I take camping to make coffee?"]
HELD_OUT = ["Suggest a quick coffee maker for busy mornings.", "I need a cheap way to brew coffee.",
            "What makes good espresso without a big machine?", "Which coffee gear suits a small kitchen?",
            "I am looking for a gift for a coffee lover.", "Recommend something for strong coffee every day."]
TARGET = 5  # the moka pot: rarely the best match for these requests


@pytest.fixture(scope="module")
def ranker():
    from victims.embedding_ranker import EmbeddingRanker

    return EmbeddingRanker()


@pytest.fixture(scope="module")
def objective(ranker):
    from attacks.sts.embedding_loss import EmbeddingObjective

    return EmbeddingObjective(ranker, PRODUCTS, TARGET, OPTIMISE)


def test_sample_swaps_change_one_position_to_a_top_token():
    sts = torch.tensor([5, 5, 5, 5])
    top = torch.tensor([[10, 11], [20, 21], [30, 31], [40, 41]])
    out = sample_swaps(sts, top, 200, torch.Generator().manual_seed(0))
    changed = out != sts
    assert (changed.sum(dim=1) == 1).all()
    rows, cols = changed.nonzero(as_tuple=True)
    assert all(int(out[r, c]) in top[c].tolist() for r, c in zip(rows, cols))
    assert len(set(cols.tolist())) == 4  # every position gets drawn


def test_candidate_losses_equal_the_gradient_pass_loss(objective):
    sts = objective.initial(8, "*")
    step = objective.step(torch.Generator().manual_seed(0))
    loss, grad = step.gradient(sts)
    exact = step.losses(sts.unsqueeze(0))
    assert grad.shape == (8, objective.vocab_size)
    assert exact[0].item() == pytest.approx(loss, abs=1e-4)


def test_the_loss_is_the_softmax_of_real_similarities(ranker, objective):
    """The objective's loss at the initial STS equals the listwise CE computed from the ranker's own scores."""
    sts = objective.initial(8, "*")
    text = objective.decode(sts)
    products = with_sts(PRODUCTS, TARGET, text)
    expected = 0.0
    for request in OPTIMISE:
        scores = torch.tensor(ranker.scores(products, request)) / objective.temperature
        expected += float(-torch.log_softmax(scores, 0)[TARGET]) / len(OPTIMISE)
    got = objective.step(torch.Generator().manual_seed(0)).losses(sts.unsqueeze(0))[0].item()
    assert got == pytest.approx(expected, rel=1e-3)


def test_allowed_tokens_and_retokenisation_filter(objective):
    allowed = objective.allowed_tokens()
    tok = objective.tokenizer
    assert not allowed[tok.cls_token_id] and not allowed[tok.sep_token_id]
    assert allowed[tok.convert_tokens_to_ids("coffee")]
    good = objective.initial(4, "*")
    # '##ing' right after '*' decodes to '*ing', which re-tokenises differently.
    bad = good.clone()
    bad[1] = tok.convert_tokens_to_ids("##ing")
    assert objective.retokenizes(torch.stack([good, bad])).tolist() == [True, False]


def test_gcg_lifts_the_target_above_keyword_stuffing(ranker, objective):
    """A short GCG run puts the target first on held-out requests more often than before and than
    keyword stuffing of the same token length (fixed seed; a real effect, not a stub)."""
    from attacks.sts.keyword_stuffing import KeywordStuffing

    result = gcg(objective, GCGParams(n_tokens=12, steps=8, topk=128, candidates=48),
                 generator=torch.Generator().manual_seed(1))
    assert result.losses[-1] < result.losses[0] - 0.5
    knowledge = STSKnowledge(products=tuple(PRODUCTS), target=TARGET, requests=tuple(OPTIMISE), seed=0,
                             count_tokens=token_counter(ranker))
    stuffing = KeywordStuffing(n_tokens=12).craft(knowledge)
    assert token_counter(ranker)(stuffing) == 12

    def top1(text: str) -> float:
        products = with_sts(PRODUCTS, TARGET, text)
        return sum(ranker.rank(products, r)[0] == TARGET for r in HELD_OUT) / len(HELD_OUT)

    assert top1("") <= 2 / 6
    assert top1(result.text) >= 0.5
    assert top1(result.text) > top1(stuffing)


def test_requests_words_drop_stopwords_and_sort_by_frequency():
    words = requests_words(["I want a coffee maker.", "Which coffee grinder?", "A coffee maker for me"])
    assert words[:2] == ["coffee", "maker"]
    assert "a" not in words and "i" not in words
    assert requests_words(["A 3D printer for 2 kids", "3D prints"])[:2] == ["3d", "printer"]
