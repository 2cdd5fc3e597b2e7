"""The victim protocol and the shared machinery of neural sequential recommenders.

A victim is trained by the testbed, then served through :mod:`redteam.serving` (a metered endpoint
in front of it). Attacks never hold a victim object; they only see what the endpoint returns.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from redteam.errors import DataError
from victims.batching import left_pad, left_pad_times
from redteam.params import Params
from redteam.training import EventTimes, FitReport, TrainHooks, train_model  # FitReport lives with the trainer; re-exported here
from victims.params import NeuralParams

FORMAT_VERSION = 1
Histories = Sequence[Sequence[int] | np.ndarray]


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
        hooks: Sequence[TrainHooks] = (),
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

    Code outside the model classes reaches the item embeddings only through :meth:`embed_items`,
    :attr:`item_table`, :attr:`item_table_name`, :attr:`hidden_size` and :meth:`reset_padding_`.

    A model that reads event times sets ``reads_event_times`` and accepts ``times`` ([B, L] float64,
    NaN where unknown) in :meth:`training_pairs` and :meth:`final_hidden`; the others never get it.
    """

    reads_event_times: ClassVar[bool] = False

    def __init__(self, n_items: int, params: NeuralParams, *, extra_tokens: int = 0) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_len = params.max_len
        self.item_emb = nn.Embedding(n_items + 1 + extra_tokens, params.hidden, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=params.hidden**-0.5)
        self.reset_padding_()

    @property
    def item_table(self) -> nn.Parameter:
        """The item embedding table, [n_items + 1 + extra tokens, hidden]; row 0 is padding."""
        return self.item_emb.weight

    @property
    def item_table_name(self) -> str:
        """:attr:`item_table`'s name among ``named_parameters()`` (for ``torch.func.functional_call``)."""
        return "item_emb.weight"

    @property
    def hidden_size(self) -> int:
        """Width of the item embeddings (and of the hidden states scored against them)."""
        return self.item_emb.embedding_dim

    def embed_items(self, ids: torch.Tensor) -> torch.Tensor:
        """[...] item ids -> [..., hidden] their embeddings (id 0, padding, embeds to zeros)."""
        return self.item_emb(ids)

    def reset_padding_(self) -> None:
        """Zero the padding row again (an optimiser step with weight decay or momentum moves it)."""
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
    reads_event_times: ClassVar[bool] = False  # whether fit() and score() use event times (HSTU's time bias)
    batch_by_exact_length: ClassVar[bool] = False  # score() groups histories by length, not by width bucket

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
        hooks: Sequence[TrainHooks] = (),
        progress: Callable[[int, int, dict[str, float]], None] | None = None,
        times: EventTimes | None = None,
    ) -> FitReport:
        self.init_model(n_items, seed)
        assert self.model is not None
        return train_model(self, train, valid, seed=seed, hooks=hooks, progress=progress, times=times)

    @torch.no_grad()
    def score(self, histories: Histories, times: Sequence[np.ndarray | None] | None = None) -> torch.Tensor:
        """[B, n_items + 1] scores after each history; column 0 (padding) is -inf.

        ``times`` (one array per history, or None) reaches a model that reads event times; the
        others ignore it. The black-box API never passes it: queries carry item ids only.
        A history's scores do not depend on the other histories of the call (bit for bit, see
        :mod:`redteam.batch_invariance`): the answer memo, the HTTP batch size and the last
        partial batch cannot change an answer."""
        from redteam.batch_invariance import filled, invariant_batches

        if self.model is None:
            raise RuntimeError(f"{self.alias}: score() before fit() or load()")
        was_training = self.model.training
        self.model.eval()
        out: torch.Tensor | None = None
        lengths = [min(len(h), self.params.max_len) for h in histories]
        for width, rows, n_run in invariant_batches(lengths, cap=self.params.max_len, batch_size=self.score_batch_size,
                                                  exact=self.batch_by_exact_length):
            run = filled(rows, n_run)
            part = [histories[i] for i in run]
            seqs = left_pad(part, self.params.max_len, width=width)
            when = {}
            if times is not None and self.reads_event_times:
                when["times"] = left_pad_times([times[i] for i in run], part, self.params.max_len, width=width)
            logits = self.model.logits(self.model.final_hidden(seqs, **when))[: rows.size]
            if out is None:
                out = logits.new_empty(len(histories), logits.shape[1])
            out[torch.from_numpy(rows)] = logits
        self.model.train(was_training)
        return torch.empty(0, self.n_items + 1) if out is None else out

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

        config = read_config(path, cls.alias, cls.Params)
        victim = cls(config["params"])
        file = path / "model.safetensors"
        try:
            state = load_file(str(file))
        except Exception as exc:  # safetensors raises several types for a damaged file
            raise DataError(f"{file}: cannot load weights ({exc})") from exc
        victim.restore_inputs(state, file)
        victim.init_model(config["n_items"], seed=0)
        assert victim.model is not None
        try:
            victim.model.load_state_dict(state)
        except RuntimeError as exc:
            raise DataError(f"{file}: cannot load weights ({exc})") from exc
        return victim

    def restore_inputs(self, state: dict[str, torch.Tensor], file: Path) -> None:
        """Before ``build`` on load: take what the model is built from out of the saved ``state``
        (a victim whose model needs more than ``n_items`` and its params overrides this)."""


def write_config(path: Path, alias: str, params: Params, n_items: int) -> None:
    config = {"format_version": FORMAT_VERSION, "victim": alias, "n_items": n_items,
              "params": params.model_dump(mode="json")}
    (path / "config.json").write_text(json.dumps(config, indent=2))


def read_config(path: Path, alias: str, params_cls: type[Params] | None = None) -> dict[str, Any]:
    """A saved victim's config.json, checked: the victim alias, ``n_items`` (an int >= 1) and a
    ``params`` mapping, validated as ``params_cls`` when given (then ``config["params"]`` is the
    Params instance). Any problem is a one-line DataError naming the file and the key."""
    file = path / "config.json"
    try:
        config = json.loads(file.read_text())
    except FileNotFoundError:
        raise DataError(f"missing model config: {file}") from None
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(f"{file}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(config, dict):
        raise DataError(f"{file}: expected a JSON object, got {type(config).__name__}")
    if config.get("victim") != alias:
        raise DataError(f"{file}: holds a '{config.get('victim')}' model, not '{alias}'")
    for key in ("n_items", "params"):
        if key not in config:
            raise DataError(f"{file}: missing key '{key}'")
    n_items = config["n_items"]
    if not isinstance(n_items, int) or isinstance(n_items, bool) or n_items < 1:
        raise DataError(f"{file}: n_items: expected a positive integer, got {n_items!r}")
    if not isinstance(config["params"], dict):
        raise DataError(f"{file}: params: expected a mapping, got {type(config['params']).__name__}")
    if params_cls is not None:
        try:
            config["params"] = params_cls(**config["params"])
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(["params", *(str(part) for part in err["loc"])])
            raise DataError(f"{file}: {key}: {err['msg']} (got {err.get('input')!r})") from None
    return config
