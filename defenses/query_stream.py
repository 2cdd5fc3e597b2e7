"""Query-stream detection per API key, in the spirit of PRADA (Juuti et al., EuroS&P 2019).

The defender watches each key's stream of queries (:mod:`defenses.stream_features`) and compares
it with benign traffic: real users replayed as sessions, each history asked as it grows, with many
users behind an "app" key and one behind a "user" key. Thresholds are set per stream length
(checkpoint) to a declared false-positive rate on half of the benign keys; the other half measures
it. A key whose stream scores over the threshold is flagged. Scoring: per checkpoint ``n``, the
AUC over keys of the attacker's stream cut into windows of ``n`` queries (as if spread over keys
of ``n`` queries each) against the held-out benign keys, the queries the attacker's key had
spent when it was first flagged, and ``keys_to_evade``: how many keys an attacker spreading its
queries needs so that none reaches the first checkpoint (a key is never judged before it).

Action: ``flag`` (the answers are not changed) or ``block`` (the key gets no answer after the
checkpoint at which it was flagged: the attacker keeps only what it bought before; benign keys
are blocked at the held-out false-positive rate). Throttling is not implemented.
Threat model: the defender sees every query of a key and its answers, and holds real users'
histories and the training popularity; the attacker does not know the features or thresholds.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from defenses.base import ServingDefense
from defenses.benign_traffic import BenignTrafficParams, benign_keys
from defenses.stream_features import FEATURES, StreamFeatures, popularity_ranks
from redteam.params import Params
from redteam.serving.middleware import Middleware
from redteam.serving.port import Histories, TopK, check_ids


class QueryStreamParams(BenignTrafficParams):
    fpr: float = Field(0.05, gt=0, lt=1, description="false-positive rate on benign keys the thresholds aim at "
                       "(half the benign keys set the thresholds, half measure them)")
    checkpoints: list[int] = Field([25, 50, 100, 200, 500, 1000], min_length=1, description="stream lengths scored")
    budget_share: float = Field(0.1, gt=0, le=1, description="the row's detector_auc is at the last checkpoint "
                                "within this share of the attacker's queries")
    action: Literal["flag", "block"] = Field("flag", description="flag: answers unchanged; block: no answer to a "
                                             "key after the checkpoint at which it was flagged")


class QueryStreamDetector(ServingDefense):
    """Flag API keys whose query stream departs from replayed benign sessions."""

    alias: ClassVar[str] = "query_stream"
    family: ClassVar[str] = "stream-detector"
    in_process_only: ClassVar[bool] = True  # one stream per attack in this process; a server keeps none per key yet
    Params = QueryStreamParams

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self.ranks: np.ndarray | None = None
        self.calibration: dict[int, tuple[np.ndarray, np.ndarray, float, np.ndarray]] = {}

    def calibrate(self, recommender: Any, histories: list[np.ndarray], item_popularity: np.ndarray, *, k: int,
                  rng: np.random.Generator) -> dict[str, Any]:
        """Replay benign keys against ``recommender`` and set a threshold per checkpoint."""
        p = self.params
        self.ranks = popularity_ranks(item_popularity)
        streams = replay(recommender, benign_keys(histories, p, rng), self.ranks, k=k)
        order = rng.permutation(len(streams))
        fit, held = [streams[i] for i in order[::2]], [streams[i] for i in order[1::2]]
        summary = {}
        for n in p.checkpoints:
            ref = np.asarray([s.vector(n) for s in fit if len(s) >= n])
            test = np.asarray([s.vector(n) for s in held if len(s) >= n])
            if len(ref) < 4 or len(test) < 2:
                continue
            mean, std = ref.mean(axis=0), np.maximum(ref.std(axis=0), 1e-3)
            threshold = float(np.quantile(_score(ref, mean, std), 1 - p.fpr))
            benign = _score(test, mean, std)
            self.calibration[n] = (mean, std, threshold, benign)
            summary[n] = {"benign_keys": int(len(ref) + len(test)), "threshold": threshold,
                          "benign_fpr": float(np.mean(benign > threshold))}
        return summary

    def wrap(self, inner: Any, rng: np.random.Generator) -> "StreamMonitor":
        if self.ranks is None:
            raise RuntimeError("query_stream: calibrate() before wrap()")
        return StreamMonitor(inner, self)

    def report(self, stream: StreamFeatures) -> dict[str, Any]:
        """Per checkpoint the attacker's AUC over keys, the share of its windows flagged, when its own
        key was first flagged, and the headline ``detector_auc``: at the last checkpoint within
        ``budget_share`` of the queries the key spent."""
        points, flagged_at = [], None
        for n, (mean, std, threshold, benign) in sorted(self.calibration.items()):
            if len(stream) < n:
                break
            windows = _score(stream.windows(n), mean, std)
            whole = float(_score(stream.vector(n)[None], mean, std)[0])
            if flagged_at is None and whole > threshold:
                flagged_at = n
            points.append({"queries": n, "auc": auc(windows, benign), "windows": int(len(windows)),
                           "windows_flagged": float(np.mean(windows > threshold)), "key_score": whole,
                           "threshold": threshold, "benign_fpr": float(np.mean(benign > threshold))})
        within = [p["auc"] for p in points if p["queries"] <= self.params.budget_share * len(stream)]
        first = min(self.calibration) if self.calibration else 1
        return {"features": dict(zip(FEATURES, np.round(stream.vector(), 4).tolist())), "points": points,
                "flagged_after": flagged_at, "detector_auc": within[-1] if within else float("nan"),
                # a key is judged from its first checkpoint on: shorter keys are never flagged
                "keys_to_evade": int(np.ceil(len(stream) / max(first - 1, 1)))}


class StreamMonitor(Middleware):
    """Answers unchanged; every query and answer goes into the key's stream features."""

    passes_scores = True

    def __init__(self, inner: Any, detector: QueryStreamDetector) -> None:
        super().__init__(inner)
        self.detector = detector
        self.stream = StreamFeatures(detector.ranks)
        self.order: list[bytes] | None = [] if detector.params.action == "block" else None

    def recommend(self, histories: Histories, k: int) -> TopK:
        cleaned = check_ids(histories, self.n_items)
        top = self.inner.recommend(cleaned, k)
        for history, answer in zip(cleaned, top.items):
            self.stream.observe(history, answer)
            if self.order is not None:
                self.order.append(np.asarray(history, dtype=np.int64).tobytes())
        return top

    def stream_report(self) -> dict[str, Any]:
        return self.detector.report(self.stream)

    def answered_before_block(self, flagged_after: int | None) -> set[bytes] | None:
        """With ``action: block``, the histories (int64 bytes) this key asked before it was blocked
        (``flagged_after`` from :meth:`stream_report`); None when it was never flagged or the action
        is ``flag``. The key's stream up to the block is the same whether or not later queries are
        refused, so cutting it here is what blocking would have left the attacker."""
        return None if self.order is None or flagged_after is None else set(self.order[:flagged_after])


def replay(recommender: Any, keys: list[list[np.ndarray]], ranks: np.ndarray, *, k: int,
           batch: int = 1024) -> list[StreamFeatures]:
    """The benign keys' streams with the recommender's answers (each distinct history asked once)."""
    distinct: dict[bytes, np.ndarray] = {}
    for stream in keys:
        for h in stream:
            distinct.setdefault(np.asarray(h, dtype=np.int64).tobytes(), np.asarray(h, dtype=np.int64))
    asked = list(distinct.values())
    answers: dict[bytes, np.ndarray] = {}
    for start in range(0, len(asked), batch):
        chunk = asked[start : start + batch]
        for h, a in zip(chunk, recommender.recommend(chunk, k).items):
            answers[h.tobytes()] = a
    out = []
    for stream in keys:
        features = StreamFeatures(ranks)
        for h in stream:
            h = np.asarray(h, dtype=np.int64)
            features.observe(h, answers[h.tobytes()])
        out.append(features)
    return out


def _score(vectors: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Squared standardised distance from benign traffic, per key."""
    return (((np.atleast_2d(vectors) - mean) / std) ** 2).sum(axis=1) if len(vectors) else np.zeros(0)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive key scores above a negative one), ties counted half; NaN when either is empty."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))
