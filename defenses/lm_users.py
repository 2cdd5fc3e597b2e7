"""Language-model embeddings of users written as text (LoRec's prompt), shared by LoRec and LLM4Dec.

A user's training sequence becomes LoRec's prompt over its item titles ("In <domain>
recommendation, a user's interaction sequence is as follows: (Item title: ...); ... . Please
assess the likelihood of this user being a fraudster."); prompts longer than the model's window
keep the most recent items that fit. The embedding is the mean of the model's last hidden states
(:meth:`redteam.lm.LanguageModel.embed`, cached on disk by model and text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from defenses.base import DefenseInputs
from redteam.errors import ConfigError


def user_embeddings(inputs: DefenseInputs, sequences: Sequence[np.ndarray], lm_config: Any, *,
                    where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """[len(sequences), width] float32 and what was done (model, truncation counts)."""
    from redteam.lm import LanguageModel, lorec_user_prompt

    if inputs.item_text is None:
        raise ConfigError(f"{where}: needs item text (titles) and the dataset has none; "
                          "use a dataset with item text or turn the language-model term off")
    text = inputs.item_text
    lm = LanguageModel.load(lm_config)
    prompts, kept, truncated = [], [], 0
    for seq in sequences:
        titles = [text[int(i)] or f"item {int(i)}" for i in seq]
        prompt, n = lorec_user_prompt(titles, domain=inputs.domain, lm=lm)
        prompts.append(prompt)
        kept.append(n)
        truncated += int(n < len(titles))
    vectors = lm.embed(prompts, cache_dir=inputs.cache_dir, progress=False, label=f"{where}: embed users")
    info = {"model": lm.model_id, "window_tokens": lm.window, "width": lm.width, "users": len(prompts),
            "truncated_users": truncated, "mean_items_kept": round(float(np.mean(kept)) if kept else 0.0, 2),
            "truncation": "prompts longer than the window keep the most recent items that fit"}
    return np.asarray(vectors, dtype=np.float32), info
