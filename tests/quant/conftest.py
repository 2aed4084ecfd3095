"""Shared fixtures for quant tests: one thread, a small digits data set."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():  # type: ignore[no-untyped-def]
    from quant.data import load_digits

    return load_digits()
