"""The STS objective against a causal-LM ranker (Kumar & Lakkaraju, 2024, after GCG by Zou et al., 2023).

Threat model: white-box. The attacker holds the ranker's weights and tokenizer
(:class:`victims.causal_lm_ranker.CausalLMRanker`) and controls only the target product's text:
the STS is appended (after one space, :meth:`redteam.catalog.Product.with_suffix`) to the end of
the target's last field.

Loss: cross-entropy of ``"1. <target name>"`` teacher-forced right after the ranker's prompt (mean
over the answer tokens), averaged over the step's requests. Each step draws a catalog order
(``torch.randperm``, when ``shuffle``) and ``requests_per_step`` requests from the attack's generator.

Token layout per step and request: ``prefix_ids + sts_ids + suffix_ids + answer_ids``, where the
prefix is the prompt before the STS (up to the target's last field value, without the space: the
space belongs to the STS's first token, as byte-level BPE and SentencePiece attach a space to the
word after it) and the suffix is the rest of the prompt. :meth:`CausalLMObjective.retokenizes`
keeps only candidates whose full prompt tokenises back to exactly that layout. The prefix is the
same for every request of a step, so its key/value cache is computed once per step and shared by
the gradient pass and by every candidate batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from attacks.sts.objective import allowed_mask
from redteam.catalog import Product
from victims.causal_lm_ranker import CausalLMRanker, PrefixCache, answer_text, build_prompt, encode, lm_logits

#: Stand-in for the STS while splitting the prompt text (a private-use character JSON keeps as is).
_MARK = "\ue000"


@dataclass
class _Layout:
    """Texts and ids around the STS for one catalog order and one request."""

    prefix_text: str
    suffix_text: str
    prefix_ids: list[int]
    suffix_ids: list[int]


class CausalLMObjective:
    """:class:`attacks.sts.objective.STSObjective` for :class:`CausalLMRanker` (white-box)."""

    def __init__(self, ranker: CausalLMRanker, products: Sequence[Product], target: int, requests: Sequence[str],
                 *, shuffle: bool = True, requests_per_step: int = 1, batch_size: int = 32,
                 use_prefix_cache: bool = True) -> None:
        if not requests:
            raise ValueError("CausalLMObjective: needs at least one request")
        if not 0 <= target < len(products):
            raise ValueError(f"CausalLMObjective: target {target} outside 0..{len(products) - 1}")
        self.ranker = ranker
        self.products = list(products)
        self.target = target
        self.requests = list(requests)
        self.shuffle = shuffle
        self.requests_per_step = max(1, min(requests_per_step, len(self.requests)))
        self.batch_size = batch_size
        self.use_prefix_cache = use_prefix_cache
        self.lm = ranker.lm
        self.tokenizer = self.lm.tokenizer
        self.vocab_size = int(self.lm.model.get_input_embeddings().num_embeddings)
        last = self.products[target].fields
        #: The space ``with_suffix`` puts before the STS (none when the last field is empty).
        self.lead = " " if last and last[-1][1] else ""
        self.answer_ids = encode(self.tokenizer, answer_text(self.products[target].name))
        self._canonical = self.layout(list(range(len(self.products))), self.requests[0])

    # ------------------------------------------------------------------------ layout

    def layout(self, order: Sequence[int], request: str) -> _Layout:
        """Split the ranker's prompt (products in ``order``) at the target's STS."""
        shown = [self.products[i].with_suffix(_MARK) if i == self.target else self.products[i] for i in order]
        text = build_prompt(self.tokenizer, self.ranker.params.system_prompt, shown, request)
        parts = text.split(_MARK)
        if len(parts) != 2:
            raise ValueError("CausalLMObjective: the prompt must hold the STS position exactly once")
        prefix_text, suffix_text = parts
        if self.lead:
            prefix_text = prefix_text.removesuffix(self.lead)
        return _Layout(prefix_text, suffix_text, encode(self.tokenizer, prefix_text), encode(self.tokenizer, suffix_text))

    # --------------------------------------------------------------- STSObjective API

    def allowed_tokens(self) -> torch.Tensor:
        return allowed_mask(self.tokenizer, self.vocab_size)

    def decode(self, sts: torch.Tensor) -> str:
        """The text appended (after ``with_suffix``'s space) to the target's last field."""
        raw = str(self.tokenizer.decode([int(t) for t in sts], clean_up_tokenization_spaces=False))
        return raw[len(self.lead):] if self.lead and raw.startswith(self.lead) else raw

    def retokenizes(self, candidates: torch.Tensor) -> torch.Tensor:
        """bool ``[B]``: the prompt (catalog order, first request) holding the candidate's text
        tokenises to ``prefix_ids + candidate + suffix_ids``.

        The STS region is JSON-escaped as :meth:`Product.json_line` would (escaping is per
        character), so a candidate whose text would be escaped fails.
        """
        cands = candidates.reshape(-1, candidates.shape[-1]).tolist()
        lay = self._canonical
        texts = [lay.prefix_text + json.dumps(self.lead + self.decode(torch.tensor(c)), ensure_ascii=False)[1:-1]
                 + lay.suffix_text for c in cands]
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return torch.tensor([list(ids) == lay.prefix_ids + c + lay.suffix_ids for ids, c in zip(encoded, cands)],
                            dtype=torch.bool)

    def initial(self, n_tokens: int, text: str = "*") -> torch.Tensor:
        """``n_tokens`` copies of one token for ``text``; the first variant (with the leading space,
        without, with a space) whose copies re-tokenise ('*' -> " * * *": "***" would merge)."""
        options: list[torch.Tensor] = []
        for variant in (self.lead + text, text, " " + text):
            ids = encode(self.tokenizer, variant)
            if len(ids) == 1:
                options.append(torch.full((n_tokens,), ids[0], dtype=torch.long))
        if not options:
            raise ValueError(f"CausalLMObjective.initial: {text!r} is not one token")
        for sts in options:
            if bool(self.retokenizes(sts[None])[0]):
                return sts
        return options[0]

    def step(self, generator: torch.Generator) -> "CausalLMStep":
        n = len(self.products)
        order = torch.randperm(n, generator=generator).tolist() if self.shuffle else list(range(n))
        k = self.requests_per_step
        picks = torch.randperm(len(self.requests), generator=generator)[:k].tolist() if k < len(self.requests) \
            else list(range(len(self.requests)))
        layouts = [self.layout(order, self.requests[i]) for i in picks]
        return CausalLMStep(self, order, [self.requests[i] for i in picks], layouts)


@dataclass
class CausalLMStep:
    """One GCG step's context: a catalog order and requests; the prefix cache is built on first use."""

    objective: CausalLMObjective
    order: list[int]
    requests: list[str]
    layouts: list[_Layout]
    _prefix: PrefixCache | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        lm = self.objective.lm
        self.device = lm.device
        self.model = lm.model
        if any(lay.prefix_ids != self.layouts[0].prefix_ids for lay in self.layouts):
            raise ValueError("CausalLMObjective: the requests must come after the catalog (one shared prefix)")
        self.prefix_ids = torch.tensor(self.layouts[0].prefix_ids, dtype=torch.long, device=self.device)
        answer = self.objective.answer_ids
        self.answer = torch.tensor(answer, dtype=torch.long, device=self.device)
        # What follows the STS for each request: the rest of the prompt and the answer but its last token.
        self.tails = [torch.tensor(lay.suffix_ids + answer[:-1], dtype=torch.long, device=self.device)
                      for lay in self.layouts]

    def prefix(self) -> PrefixCache:
        if self._prefix is None:
            self._prefix, _ = PrefixCache.of(self.model, self.layouts[0].prefix_ids, self.device)
        return self._prefix

    def _answer_ce(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the answer per row; ``logits`` ``[b, m, vocab]`` predict its m tokens."""
        m = self.answer.numel()
        target = self.answer.expand(logits.shape[0], m)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none").view(-1, m).mean(1)

    def gradient(self, sts: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(loss, d loss / d one-hot ``[n, vocab]`` float32 on CPU) at ``sts``, averaged over the requests.

        ``torch.autograd.grad`` with the one-hot as the only input skips the weight gradients
        (checked: the backward runs no weight-gradient matmuls), so the model needs no freezing.
        """
        emb = self.model.get_input_embeddings()
        weight = emb.weight.detach()
        sts = sts.to(self.device)
        one_hot = torch.zeros(sts.numel(), weight.shape[0], dtype=weight.dtype, device=self.device)
        one_hot.scatter_(1, sts[:, None], 1.0)
        one_hot.requires_grad_(True)
        m = self.answer.numel()
        total = 0.0
        grad = torch.zeros(one_hot.shape, dtype=torch.float32, device=self.device)
        with torch.enable_grad():
            for tail in self.tails:
                parts = [one_hot @ weight, emb(tail).detach()]
                if self.objective.use_prefix_cache:
                    x = torch.cat(parts)[None]
                    logits = lm_logits(self.model, inputs_embeds=x, cache=self.prefix().expand(1), keep=m)
                else:
                    x = torch.cat([emb(self.prefix_ids).detach(), *parts])[None]
                    logits = lm_logits(self.model, inputs_embeds=x, keep=m)
                loss = self._answer_ce(logits)[0] / len(self.tails)
                (g,) = torch.autograd.grad(loss, one_hot)
                grad += g.float()
                total += float(loss.detach())
        return total, grad.cpu()

    def losses(self, candidates: torch.Tensor) -> torch.Tensor:
        """Exact loss of each candidate ``[B, n]`` (float32 ``[B]`` on CPU), in batches of ``batch_size``."""
        cands = candidates.to(self.device, torch.long)
        out = torch.zeros(cands.shape[0], dtype=torch.float32)
        m, bs = self.answer.numel(), self.objective.batch_size
        cached = self.objective.use_prefix_cache
        with torch.no_grad():
            for tail in self.tails:
                for start in range(0, cands.shape[0], bs):
                    c = cands[start:start + bs]
                    b = c.shape[0]
                    pieces = [c, tail.expand(b, -1)] if cached else [self.prefix_ids.expand(b, -1), c, tail.expand(b, -1)]
                    x = torch.cat(pieces, dim=1)
                    logits = lm_logits(self.model, input_ids=x, cache=self.prefix().expand(b) if cached else None, keep=m)
                    out[start:start + b] += self._answer_ce(logits).cpu() / len(self.tails)
        return out
