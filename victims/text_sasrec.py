"""A text-based sequential recommender: items represented by their text, a SASRec encoder on top.

A simplified member of the UniSRec (Hou et al., KDD 2022) / Recformer (Li et al., "Text Is All You
Need", KDD 2023) family, documented as such: each item's text goes once through a frozen sentence
encoder (all-MiniLM-L6-v2 by default, any local model through ``lm.path``); a trainable linear
adapter (the parametric whitening of UniSRec, without its mixture of experts) maps it to the
model width; optionally an ID embedding is added; SASRec's causal self-attention runs over the
sequence of item vectors and scores the next item against the same vectors. Recformer's joint
token-level encoder and both papers' pre-training are left out.

Because an item is its text, the model scores items nobody interacted with (cold start), and a
change to an item's text changes its score at once, without retraining (:meth:`TextSASRec.set_item_text`,
what a seller editing its own listing triggers on the platform). That is the door a text attack
uses. Threat model: a black-box target behind the API, like every victim; the item texts are
public (the attacker may read them, and edit its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from redteam.errors import ConfigError, DataError
from redteam.lm import LMConfig
from victims.base import SequentialModel
from victims.sasrec import SASRec, SASRecModel, SASRecParams


class TextSASRecParams(SASRecParams):
    lm: LMConfig = Field(default_factory=LMConfig, description="frozen sentence encoder of the item texts")
    id_embedding: bool = Field(False, description="add a trainable ID embedding to each item's text vector "
                               "(False: items are their text alone, so cold items score like warm ones; True: an item "
                               "nobody bought keeps its random initial ID vector, pushed down only as a negative)")


class TextSASRecModel(SASRecModel):
    def __init__(self, n_items: int, params: TextSASRecParams, text_vectors: torch.Tensor) -> None:
        super().__init__(n_items, params)
        if text_vectors.shape[0] != n_items + 1:
            raise ValueError(f"text vectors: expected {n_items + 1} rows (padding + items), got {text_vectors.shape[0]}")
        self.register_buffer("text_vectors", text_vectors.to(torch.float32).clone())
        self.adapter = nn.Linear(text_vectors.shape[1], params.hidden)
        self.id_embedding = params.id_embedding
        if not self.id_embedding:
            self.item_emb.weight.requires_grad_(False)
            with torch.no_grad():
                self.item_emb.weight.zero_()

    @property
    def item_table(self) -> torch.Tensor:
        """The items' input representation: the frozen text vectors, [n_items + 1, text width]
        (what a defense perturbing item embeddings, APR, perturbs here)."""
        return self.text_vectors

    @property
    def item_table_name(self) -> str:
        return "text_vectors"

    def item_vectors(self) -> torch.Tensor:
        """[n_items + 1, hidden]: adapter(text) (+ the ID embedding); row 0 (padding) is zero."""
        vectors = self.adapter(self.text_vectors)
        if self.id_embedding:
            vectors = vectors + self.item_emb.weight
        return torch.cat([torch.zeros_like(vectors[:1]), vectors[1:]])

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        return self.item_vectors()[ids]

    def output_table(self) -> torch.Tensor:
        return self.item_vectors()


class TextSASRec(SASRec):
    """Text-based SASRec victim (see the module docstring). ``fit`` needs the item texts first:
    :meth:`use_item_text` (the testbed calls it with the data set's texts)."""

    alias = "text_sasrec"
    Params = TextSASRecParams
    reads_item_text: ClassVar[bool] = True

    def __init__(self, params: TextSASRecParams | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.text_vectors: torch.Tensor | None = None
        self.cache_dir: Path | None = None

    def use_item_text(self, texts: Sequence[str], *, cache_dir: Path | None = None) -> None:
        """Encode every item's text (index 0 is padding) with the frozen encoder."""
        if len(texts) < 2:
            raise ConfigError(f"victims.{self.alias}: needs the data set's item texts (this data set has none)")
        self.cache_dir = cache_dir
        vectors = self._encoder().embed(list(texts[1:]), cache_dir=cache_dir)
        self.text_vectors = torch.cat([torch.zeros(1, vectors.shape[1]), torch.from_numpy(vectors)])

    def _encoder(self):
        from redteam.lm import LanguageModel

        return LanguageModel.load(self.params.lm)

    def build(self, n_items: int) -> SequentialModel:
        if self.text_vectors is None:
            raise ConfigError(f"victims.{self.alias}: item texts not given (use_item_text before fit)")
        return TextSASRecModel(n_items, self.params, self.text_vectors)

    def set_item_text(self, item: int, text: str) -> None:
        """Re-encode one item's text in the trained model: the platform updating an edited listing."""
        if self.model is None:
            raise RuntimeError(f"{self.alias}: set_item_text() before fit() or load()")
        if not 1 <= item <= self.n_items:
            raise ValueError(f"item {item} outside 1..{self.n_items}")
        vector = torch.from_numpy(self._encoder().embed([text], cache_dir=self.cache_dir)[0])
        with torch.no_grad():
            self.model.text_vectors[item] = vector

    def restore_inputs(self, state: dict[str, torch.Tensor], file: Path) -> None:
        """The text vectors are a buffer of the saved weights: a saved model loads without the texts."""
        if "text_vectors" not in state:
            raise DataError(f"{file}: missing key 'text_vectors'")
        self.text_vectors = state["text_vectors"]


__all__ = ["TextSASRec", "TextSASRecModel", "TextSASRecParams"]
