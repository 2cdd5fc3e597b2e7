"""Fixtures of the serving tests: one tiny victim trained once per session."""

from __future__ import annotations

import pytest

from served import train_tiny_victim


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tiny_dataset, tiny_split):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tiny_victim(tmp_path_factory.mktemp("victim") / "sasrec", tiny_dataset, tiny_split)
    finally:
        torch.set_num_threads(before)
