"""The loaded language model: token counts and mean-pooled embeddings, with the disk cache.

See :mod:`redteam.lm` for the overview. Build one with ``LanguageModel.load(LMConfig(...))``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from redteam.errors import ConfigError
from redteam.lm_cache import ShardIndex
from redteam.lm_config import LMConfig
from redteam.lm_load import LOAD_LOCK, load_weights, model_id_of, position_limit, resolve_dtype, resolve_files
from redteam.progress import _OPEN, unsized_stage

__all__ = ["FALLBACK_WINDOW", "LanguageModel"]

#: Window used when neither the tokenizer nor the model config states a usable limit.
FALLBACK_WINDOW = 8192
#: A tokenizer ``model_max_length`` above this means "unknown" (transformers uses int(1e30)).
_UNKNOWN_LENGTH = 1_000_000

_INSTANCES: dict[tuple[str, LMConfig], "LanguageModel"] = {}


class LanguageModel:
    """A loaded model with its tokenizer, window and embedding cache. Build with ``LanguageModel.load``.

    Attributes: ``model`` (the transformers module: ``AutoModel`` for encoders,
    ``AutoModelForCausalLM`` for causal LMs), ``tokenizer``, ``hf_config``, ``config``,
    ``model_id``, ``window``, ``width``, ``kind``, ``device``, ``dtype``.
    """

    def __init__(self, config: LMConfig, *, model: Any, tokenizer: Any, hf_config: Any, kind: str,
                 model_id: str, dtype: str) -> None:
        """Wrap an already loaded model; prefer ``LanguageModel.load``."""
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.hf_config = hf_config
        self.kind = kind
        self.model_id = model_id
        self.device = config.device
        self.dtype = dtype
        self.width = int(getattr(hf_config, "hidden_size", None) or getattr(hf_config, "n_embd", None)
                         or model.get_input_embeddings().embedding_dim)
        limit = position_limit(hf_config)
        if config.max_length is not None:
            if limit is not None and config.max_length > limit:
                raise ConfigError(f"lm.max_length: {config.max_length} exceeds the model's {limit} positions")
            self.window = int(config.max_length)
        else:
            tok_max = getattr(tokenizer, "model_max_length", None)
            known = isinstance(tok_max, int) and 0 < tok_max <= _UNKNOWN_LENGTH
            if known:
                self.window = min(int(tok_max), limit) if limit is not None else int(tok_max)
            else:
                self.window = min(limit, FALLBACK_WINDOW) if limit is not None else FALLBACK_WINDOW
        # The embedding depends on the weights, the numeric type and (for long texts) the window.
        self.cache_id = f"{model_id};dtype={dtype};window={self.window}"
        self._indexes: dict[Path, ShardIndex] = {}
        self._lock = threading.RLock()

    @classmethod
    def load(cls, config: LMConfig | None = None) -> "LanguageModel":
        """Load (or reuse) the model for ``config``; memoised per process (weights shared across windows)."""
        config = config or LMConfig()
        with LOAD_LOCK:
            folder, gguf = resolve_files(config)
            memo = (str(gguf or folder), config)
            if memo in _INSTANCES:
                return _INSTANCES[memo]
            dtype = resolve_dtype(config)
            model, tokenizer, hf_config, kind = load_weights(folder, gguf, config.kind, config.device, dtype)
            lm = cls(config, model=model, tokenizer=tokenizer, hf_config=hf_config, kind=kind,
                     model_id=model_id_of(folder, gguf), dtype=dtype)
            _INSTANCES[memo] = lm
            return lm

    def __repr__(self) -> str:
        return f"LanguageModel({self.model_id!r}, kind={self.kind}, width={self.width}, window={self.window})"

    # ---------------------------------------------------------------- tokens

    def _token_counts(self, texts: Sequence[str], *, special: bool) -> list[int]:
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=special, truncation=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model would see it untruncated, special tokens included."""
        return self._token_counts(texts, special=True)

    # ------------------------------------------------------------- embedding

    def embed(self, texts: Sequence[str], *, cache_dir: Path | None = None, progress: bool = False,
              label: str = "embed") -> np.ndarray:
        """float32 ``[len(texts), width]``: mean of the last hidden states over the text's tokens.

        Texts are truncated to ``window`` tokens; duplicates are embedded once; with
        ``config.cache`` and a ``cache_dir`` only texts missing from the disk cache run the model,
        and their vectors go to the disk cache (:class:`redteam.lm_cache.ShardIndex`). Texts
        embedded are counted on the caller's open
        unsized progress stage (``redteam.progress.unsized_stage``) if there is one, else
        ``progress=True`` shows a rich bar (``label``) on stderr; inside a pipeline stage leave
        ``progress`` False so that a quiet run stays quiet.
        """
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.width), dtype=np.float32)
        if not texts:
            return out
        unique = list(dict.fromkeys(texts))
        rows: dict[str, np.ndarray] = {}
        index: ShardIndex | None = None
        keys: dict[str, str] = {}
        if self.config.cache and cache_dir is not None:
            with self._lock:
                index = self._index(Path(cache_dir))
                index.refresh()
                keys = {t: self._text_key(t) for t in unique}
                for t in unique:
                    vec = index.get(keys[t])
                    if vec is not None:
                        rows[t] = vec
        missing = [t for t in unique if t not in rows]
        if missing:
            vectors = self._embed_uncached(missing, progress=progress, label=label)
            rows.update(zip(missing, vectors))
            if index is not None:
                with self._lock:
                    index.write([keys[t] for t in missing], vectors)
        for i, t in enumerate(texts):
            out[i] = rows[t]
        return out

    def _text_key(self, text: str) -> str:
        return hashlib.sha256((self.cache_id + "\0" + text).encode("utf-8")).hexdigest()

    def _index(self, cache_dir: Path) -> "ShardIndex":
        root = cache_dir.expanduser().resolve() / "embeddings" / self._model_key()
        if root not in self._indexes:
            self._indexes[root] = ShardIndex(root, width=self.width)
        return self._indexes[root]

    def _model_key(self) -> str:
        ident = self.model_id.split("@", 1)[0]
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(ident.split("::")[0]).name)
        return f"{slug or 'model'}-{hashlib.sha256(self.cache_id.encode()).hexdigest()[:16]}"

    def _embed_uncached(self, texts: list[str], *, progress: bool, label: str) -> np.ndarray:
        """Each text's vector independent of the texts embedded with it (bit for bit, see
        :mod:`redteam.batch_invariance`), so a cold and a warm cache give the same vectors."""
        import torch

        from redteam.batch_invariance import filled, invariant_batches

        enc = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=self.window, verbose=False)
        ids: list[list[int]] = [list(x) for x in enc["input_ids"]]
        result = np.zeros((len(texts), self.width), dtype=np.float32)
        pad_id = int(self.tokenizer.pad_token_id)
        body = self.model.base_model if self.kind == "causal" else self.model
        device = torch.device(self.device)
        batches = invariant_batches([len(x) for x in ids], cap=self.window, batch_size=self.config.batch_size)
        with _progress(len(texts), label=label, enabled=progress) as advance, torch.inference_mode():
            for width, rows, n_run in batches:
                input_ids = torch.full((n_run, width), pad_id, dtype=torch.long)
                mask = torch.zeros((n_run, width), dtype=torch.long)
                for r, i in enumerate(filled(rows, n_run)):
                    input_ids[r, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                    mask[r, :len(ids[i])] = 1
                input_ids, mask = input_ids.to(device), mask.to(device)
                hidden = self._last_hidden(body, input_ids, mask)
                m = mask.unsqueeze(-1).to(torch.float32)
                pooled = (hidden.to(torch.float32) * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
                result[rows] = pooled[: rows.size].cpu().numpy()
                advance(rows.size)
        return result

    def _last_hidden(self, body: Any, input_ids: Any, mask: Any) -> Any:
        """Last-layer hidden states ``[batch, tokens, width]``.

        For a causal LM this runs the decoder body (``model.base_model``): its
        ``last_hidden_state`` is the causal LM's ``hidden_states[-1]`` (what the LM head reads),
        without computing vocabulary logits.
        """
        out = body(input_ids=input_ids, attention_mask=mask, use_cache=False) if self.kind == "causal" \
            else body(input_ids=input_ids, attention_mask=mask)
        return out.last_hidden_state



@contextmanager
def _progress(total: int, *, label: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """``advance(n)``: the caller's open unsized stage if any, else (when enabled) a rich bar on stderr.

    No bar of its own while any reporter stage is open (a second live display would garble the
    reporter's); a quiet reporter opens no stages, so callers inside a pipeline pass ``enabled=False``.
    """
    stage = unsized_stage()
    if getattr(stage, "_progress", None) is not None:
        stage.update(completed=0, total=total, status=label)
        yield lambda n: stage.advance(n, status=label)
        return
    if not enabled or _OPEN.get() is not None:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.update(task, advance=n)
