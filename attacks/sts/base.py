"""The text-attack family: a vendor writes text into its own product to be ranked first.

``TextAttack.craft(knowledge) -> str``: the text appended to the end of the target product's last
field. :class:`STSKnowledge` is everything the threat model grants: the catalog as the vendor sees
it (its competitors' texts), which product is its own, the shopper requests it optimises for (a
guess at real shoppers' needs: the evaluation uses held-out requests), and, for a white-box
attacker, the ranker it optimises against (possibly a different model than the one evaluated:
transfer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from attacks.base import Attack
from redteam.catalog import Product

#: GCG objective per ranker alias ("module:Class"); a new ranker type plugs its loss in here.
OBJECTIVES: dict[str, str] = {
    "ranker.embedding": "attacks.sts.embedding_loss:EmbeddingObjective",
    "ranker.causal_lm": "attacks.sts.causal_lm_loss:CausalLMObjective",
}


@dataclass(frozen=True)
class STSKnowledge:
    products: tuple[Product, ...]
    target: int
    requests: tuple[str, ...]
    seed: int
    ranker: Any | None = None  # white-box model the attack may differentiate (None: black-box)
    ranker_label: str = ""
    count_tokens: Callable[[str], int] | None = None  # the ranker's tokenizer, for equal-length baselines

    @property
    def target_product(self) -> Product:
        return self.products[self.target]


class TextAttack(Attack):
    family = "sts"
    needs_ranker: bool = False  # True: the scenario must name a ranker the attack optimises against

    def craft(self, knowledge: STSKnowledge) -> str:
        raise NotImplementedError


def objective_class(ranker: Any) -> Any:
    """The GCG objective class for ``ranker``'s type; a clear error for a type without one."""
    import importlib

    from redteam.errors import ConfigError

    target = OBJECTIVES.get(getattr(ranker, "alias", ""))
    if target is None:
        raise ConfigError(f"attacks: no STS objective for ranker '{getattr(ranker, 'alias', ranker)}'; known: {', '.join(OBJECTIVES)}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def token_counter(ranker: Any) -> Callable[[str], int]:
    tokenizer = ranker.lm.tokenizer
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def requests_words(requests: Sequence[str]) -> list[str]:
    """Lower-case words of the requests ("3d" included, bare numbers not) by frequency (first
    occurrence breaks ties), stopwords dropped."""
    import re

    counts: dict[str, int] = {}
    for request in requests:
        for word in re.findall(r"[a-z0-9][a-z0-9'-]*[a-z0-9]|[a-z]", request.lower()):
            if word not in STOPWORDS and not word.isdigit():
                counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


STOPWORDS = frozenset("""
a an the and or but if of to in on for with at by from as is are was were be been am i me my we our you your it its
this that these those can could would should will shall may might do does did have has had not no so than then there
what which who whom whose when where why how any some get give anything looking look want need
recommend recommendations recommendation suggest suggestions please help find good best like also just really very
one ones about into up out over under more most other such only own same too s t i'm i'd i've can't don't
what's someone something without around well much many lot lots thing things them they their he she his her
""".split())
