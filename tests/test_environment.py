"""configure_torch: the thread count it sets, and the deterministic algorithms that make a run at
2 threads repeat bit for bit (the backward of ``table[ids]`` accumulates in thread order without
them: 19 of 19 repeats differed before the fix)."""

from __future__ import annotations

import pytest
import torch

from redteam.environment import configure_torch, environment_info


@pytest.fixture
def restore_torch():
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def embedding_gradients(repeats: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(500, 64, generator=generator, requires_grad=True)
    ids = torch.randint(0, 500, (256, 120), generator=generator)
    weights = torch.randn(256, 120, 64, generator=generator)
    grads = []
    for _ in range(repeats):
        table.grad = None
        (table[ids] * weights).sum().backward()
        grads.append(table.grad.clone())
    return grads


def test_configure_torch_sets_threads_and_determinism(restore_torch) -> None:
    assert configure_torch(2) == 2 and torch.get_num_threads() == 2
    assert torch.are_deterministic_algorithms_enabled()
    assert environment_info()["deterministic_algorithms"] is True


def test_gathered_embedding_gradients_repeat_bit_for_bit_at_two_threads(restore_torch) -> None:
    configure_torch(2)
    first, *rest = embedding_gradients(8)
    assert all(torch.equal(first, again) for again in rest)
