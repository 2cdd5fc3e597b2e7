"""The victim protocol and the shared machinery of neural sequential recommenders.

A victim is trained by the testbed, then sits behind :class:`redteam.api.BlackBoxAPI`.
Attacks never hold a victim object; they only see what the API returns.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from redteam.errors import DataError
from victims.batching import left_pad
from redteam.params import Params
from victims.params import NeuralParams

if TYPE_CHECKING:
    from redteam.training import TrainHooks

FORMAT_VERSION = 1
Histories = Sequence[Sequence[int] | np.ndarray]


@dataclass
class FitReport:
    """What a training run did: epochs, best validation score, time, per-epoch history."""

    epochs_run: int = 0
    best_epoch: int = 0
    best_valid_ndcg10: float = float("nan")
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    threads: int = 1
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Victim(Protocol):
    """What the testbed needs from a recommender: train, score whole catalogs, persist."""

    alias: ClassVar[str]
    params: Params
    n_items: int

    def fit(
        self,
        train: list[np.ndarray],
        valid: tuple[list[np.ndarray], np.ndarray] | None,
        *,
        n_items: int,
        seed: int,
        hooks: Sequence["TrainHooks"] = (),
        progress: Callable[[int, int, dict[str, float]], None] | None = None,
    ) -> FitReport: ...

    def score(self, histories: Histories) -> torch.Tensor: ...

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> "Victim": ...


class SequentialModel(nn.Module):
    """A next-item model over items 1..n_items: per-position hidden states, tied output embeddings.

    Subclasses implement :meth:`encode`; BERT4Rec also overrides the training example and the
    scoring input (it predicts a trailing mask token).
    """

    def __init__(self, n_items: int, params: NeuralParams, *, extra_tokens: int = 0) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = params.max_len
        self.item_emb = nn.Embedding(n_items + 1 + extra_tokens, params.hidden, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=params.hidden**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    @abstractmethod
    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """[B, L] left-padded ids -> [B, L, D] hidden state after each position."""

    def training_pairs(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states and the item each should predict (0 = no loss at that position)."""
        return self.encode(inputs), targets

    def final_hidden(self, seqs: torch.Tensor) -> torch.Tensor:
        """[B, D]: the state that scores the next item after each history."""
        return self.encode(seqs)[:, -1]

    def output_table(self) -> torch.Tensor:
        """[n_items + 1, D] item vectors the hidden state is scored against."""
        return self.item_emb.weight[: self.n_items + 1]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        out = hidden @ self.output_table().T
        out[..., 0] = float("-inf")
        return out


class NeuralVictim:
    """Base class of the torch victims: parameters, fit via the shared trainer, safetensors I/O."""

    alias: ClassVar[str]
    Params: ClassVar[type[NeuralParams]] = NeuralParams

    def __init__(self, params: NeuralParams | None = None, **overrides: Any) -> None:
        given = params.model_dump() if params is not None else {}
        self.params = self.Params(**{**given, **overrides})
        self.n_items = 0
        self.model: SequentialModel | None = None
        self.score_batch_size = 1024

    @abstractmethod
    def build(self, n_items: int) -> SequentialModel:
        """A freshly initialised model (the caller seeds torch's default generator scope)."""

    def init_model(self, n_items: int, seed: int) -> SequentialModel:
        """Build with weights drawn from a private generator seeded by ``seed`` only."""
        self.n_items = n_items
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = self.build(n_items)
        return self.model

    def fit(
        self,
        train: list[np.ndarray],
        valid: tuple[list[np.ndarray], np.ndarray] | None,
        *,
        n_items: int,
        seed: int,
        hooks: Sequence["TrainHooks"] = (),
        progress: Callable[[int, int, dict[str, float]], None] | None = None,
    ) -> FitReport:
        from redteam.training import train_model

        self.init_model(n_items, seed)
        assert self.model is not None
        return train_model(self, train, valid, seed=seed, hooks=hooks, progress=progress)

    @torch.no_grad()
    def score(self, histories: Histories) -> torch.Tensor:
        """[B, n_items + 1] scores after each history; column 0 (padding) is -inf."""
        if self.model is None:
            raise RuntimeError(f"{self.alias}: score() before fit() or load()")
        was_training = self.model.training
        self.model.eval()
        chunks = []
        for start in range(0, len(histories), self.score_batch_size):
            seqs = left_pad(histories[start : start + self.score_batch_size], self.params.max_len)
            chunks.append(self.model.logits(self.model.final_hidden(seqs)))
        self.model.train(was_training)
        if not chunks:
            return torch.empty(0, self.n_items + 1)
        return torch.cat(chunks)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        if self.model is None:
            raise RuntimeError(f"{self.alias}: nothing to save before fit()")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        write_config(path, self.alias, self.params, self.n_items)

    @classmethod
    def load(cls, path: Path) -> "NeuralVictim":
        from safetensors.torch import load_file

        config = read_config(path, cls.alias)
        victim = cls(cls.Params(**config["params"]))
        victim.init_model(int(config["n_items"]), seed=0)
        assert victim.model is not None
        try:
            victim.model.load_state_dict(load_file(str(path / "model.safetensors")))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise DataError(f"{path / 'model.safetensors'}: cannot load weights ({exc})") from exc
        return victim


def write_config(path: Path, alias: str, params: Params, n_items: int) -> None:
    config = {"format_version": FORMAT_VERSION, "victim": alias, "n_items": n_items,
              "params": params.model_dump(mode="json")}
    (path / "config.json").write_text(json.dumps(config, indent=2))


def read_config(path: Path, alias: str) -> dict[str, Any]:
    file = path / "config.json"
    try:
        config = json.loads(file.read_text())
    except FileNotFoundError:
        raise DataError(f"missing model config: {file}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}: not valid JSON ({exc.msg})") from None
    if config.get("victim") != alias:
        raise DataError(f"{file}: holds a '{config.get('victim')}' model, not '{alias}'")
    return config
