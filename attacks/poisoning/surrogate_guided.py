"""Surrogate-guided attack, in the spirit of Yue et al., "Black-Box Attacks on Sequential
Recommenders via Data-Free Model Extraction" (RecSys 2021): first get a surrogate of the victim,
then build fake sequences around the targets from the surrogate's rankings.

Threat model, chosen by ``surrogate``:

* ``{from: <label>}``: black-box end to end. The surrogate is the one the extraction attack
  ``<label>`` of the same scenario stole through the top-k API (same victim, run seed and
  attacker seed); the runner runs that attack first and hands its surrogate over.
* ``whitebox``: a copy of the victim itself, an UPPER BOUND no real attacker has; the row's info
  says so.

Recipe (batched over all fakes, one slot position at a time, left to right). At each filler slot
the candidates are the surrogate's ``candidates`` best items after the profile so far plus
``random_candidates`` uniformly random items (never a target or an item already in the profile);
each is appended in turn and the surrogate scores the history; the filler is drawn among the
``sample_top`` best candidates by ``objective`` that are still under the ``max_uses`` cap (an
item fills at most 3 slots over all fakes by default; fakes pick in turn):

* ``influence`` (default): (1 - p(target | history)) * <h(history), m>, where h is the surrogate's
  hidden state after the history and m the mean hidden state after the attacker's own real
  histories (its few-shot sequences; 1,000 random single items without any). That is the
  first-order change of the target's score for those users when the victim trains on the pair
  (history -> target): full-softmax cross-entropy moves the target's output vector by
  (1 - p) * h(history). Fake histories that point where real users' histories point lift the
  target for many real users at once.
* ``joint``: log p(candidate | prefix) + log p(target | history): plausible fillers after which
  the target is already likely;
* ``promote``: log p(target | history) alone;
* ``hard``: its negative, the target's least likely contexts (the direction of Yue et al.'s
  released code, which fine-tuned the victim instead of retraining it).

The cap is ours and it matters: without it every fake converges on the few items the surrogate
scores highest, and a stolen surrogate's favourites are not the victim's. On Amazon Beauty (one
seed, black-box surrogate) uncapped fakes used 227 distinct fillers and reached target HR@50 .031,
below random fakes (.066, 1,609 distinct); capped at 3 they used 803 and reached .087.

Yue et al. shortlisted candidates by an embedding gradient; here candidates are rescored exactly
(two batched surrogate passes per slot position: seconds on CPU for Beauty's 224 fakes). The
measured comparison of the objectives is in the README (section "Profile poisoning").
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import ConfigDict, Field, model_validator

from attacks.poisoning.base import FakePlan, PoisoningAttack, PoisoningParams
from redteam.errors import ConfigError
from redteam.knowledge import Knowledge
from redteam.params import Params
from redteam.seeding import numpy_rng


class SurrogateFrom(Params):
    """``{from: <label>, through: <defense>}``: the surrogate an extraction attack of the same
    scenario stole, through the endpoint guarded by a serving defense (default: undefended), so
    the chain steal -> poison can be scored against each extraction defense."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    source: str = Field(alias="from", description="label of an extraction attack in the same scenario")
    through: str = Field("none", description="label of the serving defense the surrogate was stolen through")


class SurrogateParams(PoisoningParams):
    surrogate: Literal["whitebox"] | SurrogateFrom | None = Field(
        None, description="{from: <extraction attack label>} (black-box) or whitebox (a copy of the victim: upper bound)")
    objective: Literal["influence", "joint", "promote", "hard"] = Field(
        "influence", description="how candidates are ranked (see the module docstring)")
    candidates: int = Field(50, ge=0, description="the surrogate's top items after the prefix, as candidates per slot")
    random_candidates: int = Field(50, ge=0, description="uniformly random non-target items, as further candidates per slot")
    sample_top: int = Field(3, ge=1, description="the filler is drawn among this many best candidates")
    max_uses: int | None = Field(3, ge=1, description="a filler item is used at most this many times over all fakes "
                                 "(null: no cap); spreads the fakes over many items")
    batch: int = Field(4096, ge=1, description="histories per surrogate forward pass")

    @model_validator(mode="after")
    def _some_candidates(self) -> "SurrogateParams":
        if self.candidates + self.random_candidates < 1:
            raise ValueError("candidates + random_candidates must be at least 1")
        return self


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
            serving = ["none"] + [d.label() for d in scenario.defenses if d.name != "none"
                                  and resolve("defenses", d.name).kind == "serving"]
            if params.surrogate.through not in serving:
                raise ConfigError(f"{where}.surrogate.through: '{params.surrogate.through}' is not the label of a serving "
                                  f"defense of this scenario (serving defenses: {', '.join(serving)})")
            if any(d.label() == params.surrogate.through and d.options.get("attacker_seeds") is not None
                   for d in scenario.defenses):
                raise ConfigError(f"{where}.surrogate.through: '{params.surrogate.through}' runs on some attacker seeds only "
                                  "(attacker_seeds), so the other seeds would have no surrogate stolen through it")

    def craft(self, knowledge: Knowledge, plan: FakePlan) -> list[np.ndarray]:
        p = self.params
        if knowledge.surrogate is None:
            raise ConfigError(f"attacks.{self.alias}: no surrogate was handed over (surrogate: {p.surrogate!r})")
        model = _Scorer(knowledge.surrogate, p.batch, f"attacks.{self.alias}")
        rng = numpy_rng(knowledge.seed, "surrogate-guided")
        pool = self.filler_pool(knowledge, plan)
        direction, users = None, "none"
        if p.objective == "influence":
            direction, users = self._user_direction(model, knowledge, rng)
        profiles = [t.copy() for t in plan.templates]
        uses = np.zeros(knowledge.n_items + 1, dtype=np.int64)
        gains = []
        for pos in range(int(plan.lengths().max())):
            fakes = [i for i, prof in enumerate(profiles) if pos < len(prof) and prof[pos] == 0]
            if not fakes:
                continue
            prefixes = [profiles[i][:pos] for i in fakes]
            cands, cand_log_p = self._candidates(model, prefixes, pool, plan.targets, rng)  # [F, C]
            n_c = cands.shape[1]
            histories = [np.append(prefixes[f], c) for f in range(len(fakes)) for c in cands[f]]
            log_p, hidden = model.target_log_prob(histories, np.repeat(plan.target_of[fakes], n_c), with_hidden=direction is not None)
            log_p = log_p.reshape(len(fakes), n_c)
            if p.objective == "influence":
                value = -np.expm1(log_p) * (hidden @ direction).reshape(len(fakes), n_c)
            elif p.objective == "joint":
                value = log_p + cand_log_p
            elif p.objective == "promote":
                value = log_p
            else:
                value = -log_p
            value[~np.isfinite(cand_log_p)] = -np.inf  # (only when the catalog runs out of unused items)
            pick = self._pick(value, cands, uses, rng)
            for f, i in enumerate(fakes):
                profiles[i][pos] = cands[f, pick[f]]
            finite = np.where(np.isfinite(value), value, np.nan)
            gains.append(float(np.mean(value[np.arange(len(fakes)), pick] - np.nanmean(finite, axis=1))))
        self.diagnostics = {"knowledge": knowledge.surrogate_source or "surrogate", "objective": p.objective,
                            "real_histories": users,
                            "mean_gain_over_candidates": round(float(np.mean(gains)), 4) if gains else None}
        return profiles

    def _pick(self, value: np.ndarray, cands: np.ndarray, uses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per fake, the column of its filler: drawn among its ``sample_top`` best candidates; with
        ``max_uses``, fakes pick in turn and items at the cap are skipped (unless nothing else is left)."""
        p = self.params
        order = np.argsort(-value, axis=1, kind="stable")
        if p.max_uses is None:
            top = order[:, : p.sample_top]
            return top[np.arange(len(value)), rng.integers(0, top.shape[1], size=len(value))]
        pick = np.empty(len(value), dtype=np.int64)
        for f in range(len(value)):
            ranked = order[f]
            free = ranked[uses[cands[f, ranked]] < p.max_uses]
            ranked = free if len(free) else ranked
            top = ranked[: p.sample_top]
            pick[f] = top[rng.integers(0, len(top))]
            uses[cands[f, pick[f]]] += 1
        return pick

    def _user_direction(self, model: "_Scorer", knowledge: Knowledge, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """The mean surrogate hidden state after the attacker's real histories (its few-shot
        sequences); without any, after uniformly random single items."""
        if knowledge.few_shot:
            histories, what = [np.asarray(s) for s in knowledge.few_shot if len(s)], f"{len(knowledge.few_shot)} few-shot sequences"
        else:
            histories = [np.array([i]) for i in rng.integers(1, knowledge.n_items + 1, size=1000)]
            what = "none (1,000 random single items instead)"
        return model.hidden(histories).mean(axis=0), what

    def _candidates(self, model: "_Scorer", prefixes: list[np.ndarray], pool: np.ndarray, targets: tuple[int, ...],
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """[F, C] candidate ids and their log-probability after each prefix: the surrogate's top
        ``candidates`` items plus ``random_candidates`` uniform ones, never a target or an item
        already in the profile (all uniform, log-prob 0, for an empty prefix)."""
        p = self.params
        n_top, n_rand = min(p.candidates, len(pool)), min(p.random_candidates, len(pool))
        width = max(1, n_top + n_rand)
        ids = np.zeros((len(prefixes), width), dtype=np.int64)
        log_p = np.zeros((len(prefixes), width))
        for f, h in enumerate(prefixes):
            if len(h) == 0:
                ids[f] = rng.choice(pool, size=width, replace=width > len(pool))
        rest = [f for f, h in enumerate(prefixes) if len(h) > 0]
        blocked = np.zeros(model.n_items + 1, dtype=bool)
        blocked[[0, *targets]] = True
        for start in range(0, len(rest), p.batch):
            chunk = rest[start : start + p.batch]
            scores = model.log_probs([prefixes[f] for f in chunk])  # [B, N + 1], padding -inf
            for row, f in enumerate(chunk):
                usable = scores[row].copy()
                usable[blocked] = -np.inf
                usable[prefixes[f]] = -np.inf
                top = np.argpartition(-usable, n_top - 1)[:n_top] if n_top else np.zeros(0, dtype=np.int64)
                free = pool[np.isfinite(usable[pool]) & ~np.isin(pool, top)]
                rand = rng.choice(free, size=min(n_rand, len(free)), replace=False) if n_rand else np.zeros(0, dtype=np.int64)
                chosen = np.concatenate([top, rand])
                ids[f, : len(chosen)] = chosen
                log_p[f, : len(chosen)] = usable[chosen]
                log_p[f, len(chosen):] = -np.inf
        return ids, log_p


class _Scorer:
    """The surrogate seen as log-probabilities and (for ``influence``) hidden states, batched."""

    def __init__(self, surrogate: Any, batch: int, where: str) -> None:
        self.surrogate, self.batch, self.where = surrogate, batch, where
        self.n_items = int(surrogate.n_items)

    def log_probs(self, histories: list[np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            scores = self.surrogate.score(histories).float()
        out = torch.full_like(scores, float("-inf"))
        out[:, 1:] = torch.log_softmax(scores[:, 1:], dim=1)
        return out.numpy()

    def hidden(self, histories: list[np.ndarray]) -> np.ndarray:
        from victims.batching import left_pad

        model = getattr(self.surrogate, "model", None)
        if model is None or not hasattr(model, "final_hidden"):
            raise ConfigError(f"{self.where}.objective: 'influence' needs a neural surrogate (its hidden states)")
        parts = []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for start in range(0, len(histories), self.batch):
                parts.append(model.final_hidden(left_pad(histories[start : start + self.batch], self.surrogate.params.max_len)).numpy())
        model.train(was_training)
        return np.concatenate(parts)

    def target_log_prob(self, histories: list[np.ndarray], targets: np.ndarray, *, with_hidden: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """log p(target | history) for each history, and its hidden state when asked."""
        log_p = np.empty(len(histories))
        hidden = [] if with_hidden else None
        for start in range(0, len(histories), self.batch):
            chunk = histories[start : start + self.batch]
            idx = torch.from_numpy(np.asarray(targets[start : start + len(chunk)]) - 1).unsqueeze(1)
            with torch.no_grad():
                if with_hidden:
                    h = torch.from_numpy(self.hidden(chunk))
                    model = self.surrogate.model
                    scores = model.logits(h)
                    hidden.append(h.numpy())
                else:
                    scores = self.surrogate.score(chunk)
                log_p[start : start + len(chunk)] = torch.log_softmax(scores[:, 1:].float(), dim=1).gather(1, idx).squeeze(1).numpy()
        return log_p, (np.concatenate(hidden) if with_hidden else None)
