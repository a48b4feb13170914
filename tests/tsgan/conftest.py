"""TSGAN tests run with one torch thread (restored afterwards): on a shared 2-core machine two OpenMP
threads spin against other jobs and a TSGAN step runs tens of times slower."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """torch.set_num_threads(1) for the module, then the previous setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
