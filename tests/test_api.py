"""The black-box API: ranked ids, query counting, budget, scores, log, and no path to the model."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from redteam.api import BlackBoxAPI, QueryRecord
from redteam.errors import BudgetExceeded, ConfigError
from victims.popularity import Popularity

N_ITEMS = 30


def table_scores(seed: int = 0) -> torch.Tensor:
    """A fixed [N_ITEMS + 1] score per (history length mod 4): distinct scores, no ties."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.stack([torch.randperm(N_ITEMS + 1, generator=gen).float() for _ in range(4)])
    table[:, 0] = 1000.0  # padding scores highest: it must never be returned
    return table


TABLE = table_scores()


def score_fn(histories: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([TABLE[len(h) % 4] for h in histories])


def expected_topk(history: list[int], k: int, *, exclude: bool = False) -> list[int]:
    scores = TABLE[len(history) % 4].numpy().copy()
    scores[0] = -np.inf
    if exclude:
        scores[list(history)] = -np.inf
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


HISTORIES = [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14, 15]]


def test_topk_is_the_argsort_of_the_scores() -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=10)
    got = api.topk(HISTORIES)
    assert got == [expected_topk(h, 10) for h in HISTORIES]
    assert all(0 not in row for row in got)
    assert api.topk(HISTORIES, k=3) == [row[:3] for row in got]


def test_numpy_histories_and_small_batches_give_the_same_answer() -> None:
    whole = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=8)
    chunked = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=8, batch_size=2)
    as_arrays = [np.asarray(h, dtype=np.int64) for h in HISTORIES]
    assert chunked.topk(as_arrays) == whole.topk(HISTORIES)
    assert chunked.queries_used == whole.queries_used == len(HISTORIES)


def test_one_query_per_history() -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=5)
    assert api.queries_used == 0 and api.remaining is None
    api.topk(HISTORIES)
    assert api.queries_used == 5
    api.query(HISTORIES[:2], k=1)
    assert api.queries_used == 7


def test_budget_is_enforced_before_answering() -> None:
    calls: list[int] = []

    def counting(histories: list[np.ndarray]) -> torch.Tensor:
        calls.append(len(histories))
        return score_fn(histories)

    api = BlackBoxAPI(counting, n_items=N_ITEMS, topk=5, budget=4, log_topk=5)
    api.topk(HISTORIES[:3])
    assert api.queries_used == 3 and api.remaining == 1 and calls == [3]
    with pytest.raises(BudgetExceeded, match="budget 4"):
        api.topk(HISTORIES[:2])  # 3 + 2 > 4: refused whole, not half answered
    assert api.queries_used == 3 and calls == [3] and len(api.log) == 3
    api.topk(HISTORIES[:1])  # exactly reaching the budget is allowed
    assert api.queries_used == 4 and api.remaining == 0
    with pytest.raises(BudgetExceeded):
        api.topk(HISTORIES[:1])
    assert api.queries_used == 4 and calls == [3, 1]


def test_zero_budget_answers_nothing() -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=5, budget=0)
    with pytest.raises(BudgetExceeded):
        api.topk([[1]])
    assert api.queries_used == 0


def test_scores_only_when_exposed() -> None:
    hidden = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=6)
    assert hidden.query(HISTORIES).scores is None
    shown = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=6, expose_scores=True)
    answer = shown.query(HISTORIES)
    assert answer.items == hidden.query(HISTORIES).items
    assert answer.scores is not None and len(answer.scores) == len(HISTORIES)
    for h, ids, vals in zip(HISTORIES, answer.items, answer.scores):
        assert vals == [float(TABLE[len(h) % 4][i]) for i in ids]
        assert vals == sorted(vals, reverse=True)


def test_query_log_records_histories_and_answers() -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=10, log_topk=3)
    api.topk(HISTORIES[:2])
    api.topk([np.array([5, 4])])
    assert api.log == (
        QueryRecord(history=(1,), returned=tuple(expected_topk([1], 3))),
        QueryRecord(history=(2, 3), returned=tuple(expected_topk([2, 3], 3))),
        QueryRecord(history=(5, 4), returned=tuple(expected_topk([5, 4], 3))),
    )
    quiet = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=10, log_queries=False)
    quiet.topk(HISTORIES)
    assert quiet.log is None and quiet.queries_used == 5


@pytest.mark.parametrize("k", [0, 11])
def test_k_outside_the_api_topk_is_rejected(k: int) -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=10)
    with pytest.raises(ConfigError, match="k must be between 1"):
        api.topk(HISTORIES, k=k)
    assert api.queries_used == 0


@pytest.mark.parametrize("bad", [[0], [1, N_ITEMS + 1], [-3, 2]])
def test_invalid_item_ids_are_rejected(bad: list[int]) -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=5)
    with pytest.raises(ValueError, match=f"1..{N_ITEMS}"):
        api.topk([[1, 2], bad])
    assert api.queries_used == 0 and api.log == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topk": 5, "budget": -1}, "api.budget"),
        ({"topk": 0}, "api.topk"),
        ({"topk": N_ITEMS + 1}, "api.topk"),
    ],
)
def test_bad_configuration(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BlackBoxAPI(score_fn, n_items=N_ITEMS, **kwargs)


def test_exclude_history_drops_the_query_items() -> None:
    plain = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=10)
    excl = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=10, exclude_history=True)
    # Histories made of each row's own best items: without exclusion they are returned.
    histories = [expected_topk([0] * n, 3) for n in range(3, 7)]
    histories = [h + h[:1] * (n - 3) for h, n in zip(histories, range(3, 7))]  # length n, repeats
    assert all(len(h) == n for h, n in zip(histories, range(3, 7)))
    with_own = plain.topk(histories)
    assert all(set(h) <= set(row) for h, row in zip(histories, with_own))
    answers = excl.topk(histories)
    for h, row in zip(histories, answers):
        assert not set(h) & set(row)
        assert row == expected_topk(h, 10, exclude=True)


# --------------------------------------------------------------------------------------------
# Black-box discipline: the API object has no attribute path to the victim.


def _is_model(obj: object, victim: object) -> bool:
    """The victim, any torch module, or a method bound to the victim (``victim.score``)."""
    if obj is victim or isinstance(obj, (torch.nn.Module, Popularity)):
        return True
    return getattr(obj, "__self__", None) is victim


@pytest.fixture
def served() -> tuple[BlackBoxAPI, Popularity]:
    victim = Popularity()
    victim.fit([np.array([1, 2, 2, 3, 3, 3])], None, n_items=N_ITEMS, seed=0)
    return BlackBoxAPI(victim.score, n_items=N_ITEMS, topk=5), victim


def test_answers_come_from_the_victim(served) -> None:
    api, _ = served
    assert api.topk([[4]], k=3) == [[3, 2, 1]]


def _attribute_paths(root: object, depth: int = 3):
    """(path, value) for every attribute (no dunders below the top level) and container item
    reachable from ``root`` within ``depth`` steps."""
    seen, frontier = {id(root)}, [("api", root)]
    for level in range(depth):
        nxt = []
        for path, obj in frontier:
            names = set(dir(obj)) | set(getattr(type(obj), "__slots__", ()))
            children = []
            for name in sorted(names):
                if level and name.startswith("__"):
                    continue
                try:
                    children.append((f"{path}.{name}", getattr(obj, name)))
                except Exception:
                    continue
            if isinstance(obj, (list, tuple)):
                children += [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
            elif isinstance(obj, dict):
                children += [(f"{path}[{k!r}]", v) for k, v in obj.items()]
            for child_path, child in children:
                if id(child) not in seen:
                    seen.add(id(child))
                    nxt.append((child_path, child))
                    yield child_path, child
        frontier = nxt


def test_no_attribute_reaches_the_model(served) -> None:
    api, victim = served
    api.topk([[1, 2]])  # a non-empty log is walked too
    paths = dict(_attribute_paths(api))
    assert "api._ops" in paths and "api.log[0]" in paths
    for path, value in paths.items():
        assert not _is_model(value, victim), path
        assert not isinstance(value, torch.Tensor), path
    with pytest.raises(TypeError):
        vars(api)
    with pytest.raises(AttributeError):
        api.model = victim  # __slots__: no new attribute can be hung on it


@pytest.mark.parametrize("clone", [pickle.dumps, copy.copy, copy.deepcopy], ids=["pickle", "copy", "deepcopy"])
def test_cannot_be_pickled_or_copied(served, clone) -> None:
    api, _ = served
    with pytest.raises(TypeError, match="cannot be pickled or copied"):
        clone(api)


def test_closure_is_the_known_limitation(served) -> None:
    """Documented boundary: no *attribute* path. A closure cell still holds the score function
    (a Python limitation, not a sandbox); this pins where the model actually lives."""
    api, victim = served
    meters = [c.cell_contents for c in api._ops[0].__closure__]
    inner = [m.inner for m in meters if hasattr(m, "inner")]
    assert any(getattr(r._score, "__self__", None) is victim for r in inner)


# --------------------------------------------------------------------------------------------
# Sealed: an attack cannot switch off its own budget, counters, top-k, score exposure or log.


@pytest.mark.parametrize(("name", "value"), [("queries_used", 0), ("budget", None), ("expose_scores", True),
                                             ("topk_default", N_ITEMS), ("log", []), ("remaining", 10**9)])
def test_metering_state_cannot_be_assigned(name: str, value: object) -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=5, budget=3)
    api.topk(HISTORIES[:3])
    with pytest.raises(AttributeError):
        setattr(api, name, value)
    with pytest.raises(AttributeError):
        delattr(api, name)
    assert api.queries_used == 3 and api.budget == 3 and api.topk_default == 5 and not api.expose_scores
    with pytest.raises(BudgetExceeded):
        api.topk(HISTORIES[:1])


def test_the_log_is_a_snapshot_the_caller_cannot_clear() -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=5)
    api.topk(HISTORIES[:2])
    log = api.log
    with pytest.raises(AttributeError):
        log.clear()  # a tuple
    assert len(api.log) == 2
    api.topk(HISTORIES[:1])
    assert len(log) == 2 and len(api.log) == 3


def test_queries_are_accounted_per_caller() -> None:
    api = BlackBoxAPI(score_fn, n_items=N_ITEMS, topk=5, budget=2)
    api.topk(HISTORIES[:2], caller="a")
    api.topk(HISTORIES[:2], caller="b")  # each caller has its own budget
    with pytest.raises(BudgetExceeded):
        api.topk(HISTORIES[:1], caller="a")
    assert api.usage == {"a": 2, "b": 2} and api.used_by("a") == 2 and api.queries_used == 0
    assert [r.caller for r in api.log] == ["a", "a", "b", "b"]
