"""GCG objective against a bi-encoder ranker: a listwise softmax loss over shopper requests.

Kumar & Lakkaraju (2024) optimise an STS against a causal LM; for a bi-encoder the same search
needs a loss on similarities (specs/sts.md): for each optimisation request ``q`` the target's
cosine similarity competes with every competitor's in a softmax with temperature ``tau``,

    loss = mean_q  -log softmax_j(cos(q, p_j) / tau)[target].

Only the target's embedding depends on the STS, so requests and competitors are embedded once.
Token layout of the target document: ``[CLS] <document tokens> <STS tokens> [SEP]``; the
re-tokenisation filter keeps candidates whose decoded text, appended to the last field with a
space, tokenises back to exactly that layout.

Threat model: white-box access to the encoder (its weights and tokenizer); the vendor knows the
competing products' texts and guesses shoppers' requests (the optimisation requests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from redteam.catalog import Product
from attacks.sts.objective import allowed_mask
from victims.embedding_ranker import EmbeddingRanker


class EmbeddingObjective:
    """Listwise softmax loss of the target's similarity against its competitors' (see module docstring)."""

    def __init__(self, ranker: EmbeddingRanker, products: Sequence[Product], target: int,
                 requests: Sequence[str], *, temperature: float = 0.05, requests_per_step: int | None = None,
                 batch_size: int = 64) -> None:
        if not requests:
            raise ValueError("the embedding objective needs at least one optimisation request")
        self.ranker = ranker
        self.lm = ranker.lm
        self.tokenizer = self.lm.tokenizer
        self.model = self.lm.model
        self.target = target
        self.product = products[target]
        self.temperature = temperature
        self.requests_per_step = requests_per_step
        self.batch_size = batch_size
        self.embedding = self.model.get_input_embeddings().weight
        self.vocab_size = int(self.embedding.shape[0])
        others = [ranker.document(p) for i, p in enumerate(products) if i != target]
        self.queries = torch.from_numpy(ranker.unit_vectors([ranker.query(r) for r in requests]))
        self.competitors = torch.from_numpy(ranker.unit_vectors(others)) if others else torch.zeros((0, self.lm.width))
        ids = self.tokenizer(ranker.document(self.product), add_special_tokens=True)["input_ids"]
        self.head = torch.tensor(ids[:-1], dtype=torch.long)  # [CLS] + document
        self.tail = torch.tensor(ids[-1:], dtype=torch.long)  # [SEP]
        self._allowed: torch.Tensor | None = None

    @property
    def fixed_context(self) -> bool:
        """Every step scores all optimisation requests: losses of different steps are comparable."""
        return self.requests_per_step is None or self.requests_per_step >= len(self.queries)

    # --------------------------------------------------------------- protocol

    def allowed_tokens(self) -> torch.Tensor:
        if self._allowed is None:
            self._allowed = allowed_mask(self.tokenizer, self.vocab_size)
        return self._allowed

    def initial(self, n_tokens: int, text: str = "*") -> torch.Tensor:
        if len(self.head) + n_tokens + len(self.tail) > self.lm.window:
            raise ValueError(f"the target's text ({len(self.head)} tokens) plus a {n_tokens}-token STS exceeds the "
                             f"encoder's {self.lm.window}-token window: the ranker would not read the STS")
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"the STS initial text {text!r} has no tokens")
        return torch.tensor((ids * n_tokens)[:n_tokens], dtype=torch.long)

    def decode(self, sts: torch.Tensor) -> str:
        return self.tokenizer.decode(sts.tolist(), clean_up_tokenization_spaces=False)

    def retokenizes(self, candidates: torch.Tensor) -> torch.Tensor:
        expected_head = self.head.tolist()
        keep = []
        for row in candidates:
            text = self.ranker.document(self.product.with_suffix(self.decode(row)))
            ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
            keep.append(ids == expected_head + row.tolist() + self.tail.tolist())
        return torch.tensor(keep, dtype=torch.bool)

    def step(self, generator: torch.Generator) -> "EmbeddingStep":
        queries = self.queries
        if self.requests_per_step is not None and self.requests_per_step < len(queries):
            pick = torch.randperm(len(queries), generator=generator)[: self.requests_per_step]
            queries = queries[pick]
        return EmbeddingStep(self, queries)

    # ---------------------------------------------------------------- helpers

    def loss_from_vectors(self, target_vectors: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """[B] mean listwise CE over ``queries`` of B target embeddings (unnormalised, [B, width])."""
        t = _normalise(target_vectors)
        own = t @ queries.T  # [B, Q]
        rival = (self.competitors @ queries.T).unsqueeze(0).expand(t.shape[0], -1, -1)  # [B, C, Q]
        logits = torch.cat([own.unsqueeze(1), rival], dim=1) / self.temperature  # [B, 1 + C, Q]
        return -torch.log_softmax(logits, dim=1)[:, 0, :].mean(dim=1)

    def pooled(self, embeds: torch.Tensor) -> torch.Tensor:
        """Mean of the encoder's last hidden states over all tokens (no padding: equal lengths)."""
        mask = torch.ones(embeds.shape[:2], dtype=torch.long)
        hidden = self.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return hidden.mean(dim=1)

    def token_embeds(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding[ids]


@dataclass
class EmbeddingStep:
    objective: EmbeddingObjective
    queries: torch.Tensor

    def gradient(self, sts: torch.Tensor) -> tuple[float, torch.Tensor]:
        obj = self.objective
        one_hot = torch.zeros((len(sts), obj.vocab_size), dtype=obj.embedding.dtype)
        one_hot[torch.arange(len(sts)), sts] = 1.0
        one_hot.requires_grad_(True)
        with torch.enable_grad():
            middle = one_hot @ obj.embedding
            embeds = torch.cat([obj.token_embeds(obj.head), middle, obj.token_embeds(obj.tail)]).unsqueeze(0)
            loss = obj.loss_from_vectors(obj.pooled(embeds), self.queries)[0]
            (grad,) = torch.autograd.grad(loss, one_hot)
        return float(loss.detach()), grad

    def losses(self, candidates: torch.Tensor) -> torch.Tensor:
        obj = self.objective
        out = []
        with torch.inference_mode():
            for start in range(0, len(candidates), obj.batch_size):
                batch = candidates[start:start + obj.batch_size]
                b = len(batch)
                ids = torch.cat([obj.head.expand(b, -1), batch, obj.tail.expand(b, -1)], dim=1)
                out.append(obj.loss_from_vectors(obj.pooled(obj.token_embeds(ids)), self.queries))
        return torch.cat(out).float()


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)
