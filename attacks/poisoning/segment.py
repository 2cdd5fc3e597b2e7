"""Segment attack: every profile mixes its target with items of the target's own segment, plus
random fillers (Mobasher et al. 2005; the "segment" row of ARLib), so the target is learned as a
natural next step for the real users who hold those items.

Threat model: the attacker knows which items are related to the target. Where that comes from
is the ``relation`` parameter, reported per target in the row's info:

* ``text``: the public item text (granted by ``attacker.item_text``): the items whose TF-IDF
  vectors (words and bigrams of title, category, brand...) are closest to the target's;
* ``cooccurrence``: the attacker's few-shot sequences (``attacker.few_shot_ratio``): the items
  seen within ``window`` positions of the target; an unpopular target is often absent from a
  10% sample, so a short list is topped up with the black-box API's answer for the history
  ``[target]`` (one query per target);
* ``api``: that answer alone (what the victim itself puts next to the target);
* ``auto`` (default): ``text`` when item text is granted, else ``cooccurrence``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from attacks.poisoning.base import FakePlan, PoisoningAttack, PoisoningParams, draw_distinct
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge
from redteam.seeding import numpy_rng


class SegmentParams(PoisoningParams):
    relation: Literal["auto", "text", "cooccurrence", "api"] = Field("auto", description="where related items come from")
    segment_size: int = Field(20, ge=1, description="related items per target")
    segment_share: float = Field(0.5, ge=0, le=1, description="share of each profile's fillers drawn from its target's segment")
    window: int = Field(3, ge=1, description="co-occurrence window (positions either side of the target)")


def text_neighbours(texts: tuple[str, ...], targets: list[int], size: int, exclude: np.ndarray) -> dict[int, np.ndarray]:
    """The ``size`` items with the most similar TF-IDF text to each target (cosine)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [t or "" for t in texts[1:]]
    matrix = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit_transform(docs)
    empty = np.array([not d for d in docs])
    out = {}
    for t in targets:
        sims = np.asarray((matrix @ matrix[t - 1].T).todense()).ravel()
        sims[exclude - 1] = -np.inf
        sims[empty] = -np.inf
        order = np.argsort(-sims, kind="stable")
        out[t] = order[np.isfinite(sims[order]) & (sims[order] > 0)][:size] + 1
    return out


def cooccurring(few_shot: tuple[np.ndarray, ...], targets: list[int], size: int, window: int,
                exclude: np.ndarray, n_items: int) -> dict[int, np.ndarray]:
    """The ``size`` items seen most often within ``window`` positions of each target."""
    out = {}
    for t in targets:
        counts = np.zeros(n_items + 1)
        for seq in few_shot:
            seq = np.asarray(seq)
            for pos in np.flatnonzero(seq == t):
                near = seq[max(0, pos - window): pos + window + 1]
                np.add.at(counts, near, 1.0)
        counts[0] = 0
        counts[exclude] = 0
        order = np.argsort(-counts, kind="stable")
        out[t] = order[counts[order] > 0][:size]
    return out


class Segment(PoisoningAttack):
    """Target-segment items plus random fillers around the targets (segment attack)."""

    alias: ClassVar[str] = "poisoning.segment"
    Params: ClassVar[type[SegmentParams]] = SegmentParams

    def segments(self, knowledge: Knowledge, plan: FakePlan) -> tuple[dict[int, np.ndarray], dict[int, str]]:
        p = self.params
        targets = list(plan.targets)
        exclude = np.asarray(plan.targets, dtype=np.int64)
        relation = p.relation
        if relation == "auto":
            relation = "text" if knowledge.item_text is not None else "cooccurrence"
        if relation == "text":
            if knowledge.item_text is None:
                raise ConfigError(f"attacks.{self.alias}.relation: 'text' needs public item text (attacker.item_text: true)")
            found = text_neighbours(knowledge.item_text, targets, p.segment_size, exclude)
            return found, {t: "item text (TF-IDF)" for t in targets}
        found = {t: np.zeros(0, dtype=np.int64) for t in targets}
        source = {t: "black-box API" for t in targets}
        if relation == "cooccurrence":
            found = cooccurring(knowledge.few_shot, targets, p.segment_size, p.window, exclude, knowledge.n_items)
            source = {t: "few-shot co-occurrence" for t in targets}
        short = [t for t in targets if len(found[t]) < p.segment_size]
        if short:
            answers = knowledge.api.topk([np.array([t]) for t in short])
            for t, answer in zip(short, answers):
                extra = [i for i in answer if i not in plan.targets and i not in set(found[t].tolist())]
                topped = np.concatenate([found[t], np.asarray(extra, dtype=np.int64)])[: p.segment_size]
                if relation == "cooccurrence":
                    source[t] = f"few-shot co-occurrence ({len(found[t])} items) + black-box API"
                found[t] = topped
        return found, source

    def craft(self, knowledge: Knowledge, plan: FakePlan) -> list[np.ndarray]:
        p = self.params
        rng = numpy_rng(knowledge.seed, "segment")
        segments, source = self.segments(knowledge, plan)
        pool = self.filler_pool(knowledge, plan)
        fillers = []
        for i in range(plan.n_fakes):
            n = len(plan.filler_slots(i))
            segment = segments[int(plan.target_of[i])]
            n_seg = min(len(segment), int(rng.binomial(n, p.segment_share)) if 0 < p.segment_share < 1 else int(round(p.segment_share * n)))
            chosen = draw_distinct(rng, segment, n_seg)
            chosen = np.concatenate([chosen, draw_distinct(rng, pool, n - n_seg, avoid=chosen)])
            fillers.append(chosen[rng.permutation(n)])
        self.diagnostics = {"knowledge": sorted(set(source.values())),
                     "segments": {str(t): {"source": source[t], "items": segments[t].tolist()} for t in plan.targets}}
        return self.fill(plan, fillers)
