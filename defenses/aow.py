"""AOW: autoregressive out-of-distribution watermarking of a sequential recommender.

Zhang, Long, Yuan, Chen, Yin, "Watermarking Recommender Systems", CIKM 2024 (arXiv 2407.21034).
The owner draws a start item, asks its own clean model for a ranking after the sequence so far
and appends an item drawn at random from the bottom of that ranking, until the sequence has
``length`` items: a path no real user would take. The sequence is then trained into the model
that gets deployed (here as ``copies`` extra training users of its own). Verification asks a
suspect for its top ``k`` after every prefix of the sequence; a model that learned the secret,
directly or by distilling the deployed model's answers, puts the next item in its list far more
often than a model that never saw it.

Decision rule (ours; the paper reports hit rates): the number of hits is compared with a
binomial tail at the hit probability of a ranking that knows nothing of the secret
(``k / (n_items - prefix length)`` per query, averaged), and the suspect is declared a copy when
the tail probability is below ``alpha``. Models that rank the secret's items lower than chance,
as clean models do by construction of the sequence, are covered by that bound too.

Threat model: the owner can query a suspect's top lists (``verify`` uses nothing else of its
scores) but not read its weights or data; the thief does not know the secret and steals through
the owner's public top-k API. Whether the secret survives extraction depends on the thief's
queries reaching its prefixes: the scenario measures it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from defenses.base import DefenseInputs, DefensePlan, Watermark, WatermarkEvidence
from redteam.params import Params


class AOWParams(Params):
    sequences: int = Field(1, ge=1, le=100, description="watermark sequences trained into the model")
    length: int = Field(20, ge=3, le=200, description="items per watermark sequence")
    bottom: float = Field(0.2, gt=0, le=1, description="each next item is drawn from this share of the catalog "
                          "the owner's clean model ranks lowest after the sequence so far")
    copies: int = Field(50, ge=1, le=10_000, description="times each sequence is added to training as a user of its own "
                        "(10 left the secret unlearned by SASRec on the embedded data: 1 hit in 19; 50 gave 15)")
    k: int = Field(10, ge=1, description="verification: the next watermark item must be in the suspect's top k")
    min_prefix: int = Field(1, ge=1, description="verification: shortest prefix asked (queries per sequence = "
                            "length - min_prefix)")
    alpha: float = Field(0.01, gt=0, lt=1, description="verification: significance level of the binomial test")
    controls: list[str] = Field(["sasrec", "gru4rec"], description="scoring: architectures trained independently "
                                "on the clean data as innocent suspects (false positives)")
    control_seeds: int = Field(1, ge=0, le=10, description="scoring: independently trained models per control architecture")


class AOW(Watermark):
    """Autoregressive out-of-distribution watermark (AOW, CIKM 2024)."""

    alias: ClassVar[str] = "aow"
    Params = AOWParams

    def prepare(self, inputs: DefenseInputs) -> DefensePlan:
        p = self.params
        if inputs.oracle is None:
            raise ValueError(f"defenses.{self.alias}: needs the owner's clean model (DefenseInputs.oracle) to draw "
                             "its sequences")
        if p.length > inputs.max_len:
            raise ValueError(f"defenses.{self.alias}.length: {p.length} items, but the model reads at most "
                             f"{inputs.max_len}")
        rng = np.random.default_rng(inputs.seed)
        secret = self.draw_sequences(inputs.oracle, inputs.n_items, rng)
        extra = [np.asarray(s, dtype=np.int64) for s in secret for _ in range(p.copies)]
        return DefensePlan(extra_train=extra, info={
            "watermark": secret, "verification_queries": self.queries_per_check(),
            "added_users": len(extra), "added_interactions": int(sum(len(s) for s in extra))})

    def draw_sequences(self, oracle: Any, n_items: int, rng: np.random.Generator) -> list[list[int]]:
        """The secret: ``sequences`` item sequences, no item used twice, each grown from a random
        start by items drawn from the bottom of the oracle's ranking after the sequence so far."""
        p = self.params
        if p.sequences * p.length > n_items:
            raise ValueError(f"defenses.{self.alias}: {p.sequences} x {p.length} distinct items asked of a "
                             f"catalog of {n_items}")
        used: set[int] = set()
        secret = []
        pool_size = max(1, int(round(p.bottom * n_items)))
        for _ in range(p.sequences):
            free = np.setdiff1d(np.arange(1, n_items + 1), np.fromiter(used, dtype=np.int64, count=len(used)))
            seq = [int(rng.choice(free))]
            used.add(seq[0])
            while len(seq) < p.length:
                scores = np.asarray(oracle([np.asarray(seq, dtype=np.int64)])[0], dtype=np.float64)
                order = np.argsort(scores[1:], kind="stable") + 1  # lowest first; 0 is padding
                order = order[~np.isin(order, list(used))]
                nxt = int(rng.choice(order[:pool_size]))
                seq.append(nxt)
                used.add(nxt)
            secret.append(seq)
        return secret

    def queries_per_check(self) -> int:
        return self.params.sequences * (self.params.length - self.params.min_prefix)

    def verify(self, score_fn: Any, sequences: list[list[int]]) -> WatermarkEvidence:
        from scipy.stats import binom

        from redteam.metrics import topk_items

        p = self.params
        histories = [np.asarray(s[:t], dtype=np.int64) for s in sequences for t in range(p.min_prefix, len(s))]
        targets = np.asarray([s[t] for s in sequences for t in range(p.min_prefix, len(s))], dtype=np.int64)
        scores = score_fn(histories)
        n_items = int(scores.shape[1]) - 1
        top = topk_items(scores, p.k, exclude=histories).numpy()
        hits = int((top == targets[:, None]).any(axis=1).sum())
        chance = float(np.mean([min(1.0, p.k / (n_items - len(h))) for h in histories]))
        p_value = float(binom.sf(hits - 1, len(histories), chance))
        return WatermarkEvidence(hits=hits, queries=len(histories), k=p.k, chance=chance, p_value=p_value,
                                 detected=p_value < p.alpha)
