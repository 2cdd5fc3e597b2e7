"""Surrogate-guided attack, in the spirit of Yue et al., "Black-Box Attacks on Sequential
Recommenders via Data-Free Model Extraction" (RecSys 2021): first get a surrogate of the victim,
then build fake sequences around the targets from the surrogate's rankings.

Threat model, chosen by ``surrogate``:

* ``{from: <label>}``: black-box end to end. The surrogate is the one the extraction attack
  ``<label>`` of the same scenario stole through the top-k API (same victim, run seed and
  attacker seed); the runner runs that attack first and hands its surrogate over.
* ``whitebox``: a copy of the victim itself, an UPPER BOUND no real attacker has; the row's info
  says so.

Recipe (batched over all fakes, one slot position at a time, left to right): at each filler
slot the surrogate ranks the catalog after the profile so far and its ``candidates`` best items
(never a target or an item already in the profile; uniformly random ones for a first slot) are
each appended in turn; the surrogate then scores the profile's target after every such history.
The filler is drawn among the ``sample_top`` best candidates by ``objective``:

* ``joint`` (default): log p(candidate | prefix) + log p(target | prefix + candidate), the
  surrogate's probability that a user would go on to this filler and then to the target: fake
  histories that look like real ones and after which the target rises;
* ``promote``: log p(target | prefix + candidate) alone;
* ``hard``: its negative, the targets' least likely contexts (the direction of Yue et al.'s
  released code, which fine-tuned the victim).

Measured on the embedded data (SASRec, 1% fakes, white-box surrogate, random placement, one
attacker seed), target HR@50 after retraining: clean .007, random fillers .011, hard .005,
promote .030, joint .041. Yue et al. shortlisted candidates by an embedding gradient; here the
shortlist is the surrogate's own ranking and candidates are rescored exactly (two batched passes
per slot position, cheap on CPU).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field

from attacks.poisoning.base import FakePlan, PoisoningAttack, PoisoningParams
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge
from redteam.params import Params
from redteam.seeding import numpy_rng


class SurrogateFrom(Params):
    """``{from: <label>}``: the surrogate an extraction attack of the same scenario stole."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from", description="label of an extraction attack in the same scenario")


class SurrogateParams(PoisoningParams):
    surrogate: Literal["whitebox"] | SurrogateFrom | None = Field(
        None, description="{from: <extraction attack label>} (black-box) or whitebox (a copy of the victim: upper bound)")
    candidates: int = Field(50, ge=1, description="candidate fillers scored per slot")
    sample_top: int = Field(3, ge=1, description="the filler is drawn among this many best candidates")
    objective: Literal["joint", "promote", "hard"] = Field(
        "joint", description="rank candidates by the target's log-probability after them (promote), plus their own (joint), or by its negative (hard)")
    batch: int = Field(4096, ge=1, description="histories per surrogate forward pass")


class SurrogateGuided(PoisoningAttack):
    """Fake sequences built from a surrogate's rankings (after Yue et al. 2021)."""

    alias: ClassVar[str] = "poisoning.surrogate"
    Params: ClassVar[type[SurrogateParams]] = SurrogateParams

    @classmethod
    def check_scenario(cls, params: SurrogateParams, scenario: Any, *, where: str) -> None:
        """The surrogate must be named, and ``from`` must be an extraction attack of the scenario."""
        from redteam.registry import resolve

        if params.surrogate is None:
            raise ConfigError(f"{where}.surrogate: required: {{from: <extraction attack label>}} (black-box) "
                              "or whitebox (a copy of the victim, an upper bound)")
        if isinstance(params.surrogate, SurrogateFrom):
            labels = {s.label(): s for s in scenario.attacks}
            extraction = sorted(lbl for lbl, s in labels.items() if resolve("attacks", s.name).family == "extraction")
            if params.surrogate.source not in extraction:
                known = ", ".join(extraction) or "none in this scenario"
                raise ConfigError(f"{where}.surrogate.from: '{params.surrogate.source}' is not the label of an extraction "
                                  f"attack of this scenario (extraction attacks: {known})")

    def craft(self, knowledge: Knowledge, plan: FakePlan) -> list[np.ndarray]:
        p = self.params
        model = knowledge.surrogate
        if model is None:
            raise ConfigError(f"attacks.{self.alias}: no surrogate was handed over (surrogate: {p.surrogate!r})")
        rng = numpy_rng(knowledge.seed, "surrogate-guided")
        pool = self.filler_pool(knowledge, plan)
        profiles = [t.copy() for t in plan.templates]
        is_target = np.zeros(knowledge.n_items + 1, dtype=bool)
        is_target[list(plan.targets)] = True
        width = int(plan.lengths().max())
        gains = []
        for pos in range(width):
            fakes = [i for i, prof in enumerate(profiles) if pos < len(prof) and prof[pos] == 0]
            if not fakes:
                continue
            prefixes = [profiles[i][:pos] for i in fakes]
            cands, cand_log_p = self._candidates(model, prefixes, pool, is_target, rng)  # [F, C]
            n_c = cands.shape[1]
            histories = [np.append(prefixes[f], c) for f in range(len(fakes)) for c in cands[f]]
            targets = np.repeat(plan.target_of[fakes], n_c)
            value = self._target_log_prob(model, histories, targets).reshape(len(fakes), n_c)
            if p.objective == "hard":
                value = -value
            elif p.objective == "joint":
                value = value + cand_log_p
            value[~np.isfinite(cand_log_p)] = -np.inf  # (only when the catalog runs out of unused items)
            top = np.argsort(-value, axis=1, kind="stable")[:, : min(p.sample_top, n_c)]
            pick = top[np.arange(len(fakes)), rng.integers(0, top.shape[1], size=len(fakes))]
            for f, i in enumerate(fakes):
                profiles[i][pos] = cands[f, pick[f]]
            gains.append(float(np.mean(value[np.arange(len(fakes)), pick] - np.nanmean(np.where(np.isfinite(value), value, np.nan), axis=1))))
        self.info = {"knowledge": knowledge.surrogate_source or "surrogate", "objective": p.objective,
                     "mean_gain_over_candidates": round(float(np.mean(gains)), 4) if gains else None}
        return profiles

    def _candidates(self, model: Any, prefixes: list[np.ndarray], pool: np.ndarray, blocked: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """[F, C] candidate ids and their log-probability under the surrogate after each prefix:
        its top items, never a target or an item already in the profile (random ones, log-prob 0,
        for an empty prefix)."""
        c = min(self.params.candidates, len(pool))
        ids = np.zeros((len(prefixes), c), dtype=np.int64)
        log_p = np.zeros((len(prefixes), c))
        for f, h in enumerate(prefixes):
            if len(h) == 0:
                ids[f] = rng.choice(pool, size=c, replace=False)
        rest = [f for f, h in enumerate(prefixes) if len(h) > 0]
        for start in range(0, len(rest), self.params.batch):
            chunk = rest[start : start + self.params.batch]
            with torch.no_grad():
                scores = torch.log_softmax(model.score([prefixes[f] for f in chunk])[:, 1:].float(), dim=1)
            scores = torch.cat([torch.full((len(chunk), 1), float("-inf")), scores], dim=1)
            scores[:, torch.from_numpy(blocked)] = float("-inf")
            for row, f in enumerate(chunk):
                scores[row, torch.as_tensor(prefixes[f])] = float("-inf")
            top = torch.topk(scores, c, dim=1)
            ids[chunk] = top.indices.numpy()
            log_p[chunk] = top.values.numpy()
        return ids, log_p

    def _target_log_prob(self, model: Any, histories: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
        out = np.empty(len(histories))
        for start in range(0, len(histories), self.params.batch):
            with torch.no_grad():
                scores = model.score(histories[start : start + self.params.batch])
                log_p = torch.log_softmax(scores[:, 1:], dim=1)
            idx = torch.from_numpy(targets[start : start + self.params.batch] - 1)
            out[start : start + len(idx)] = log_p.gather(1, idx.unsqueeze(1)).squeeze(1).numpy()
        return out
