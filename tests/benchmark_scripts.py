"""Shared by the benchmark smoke tests: benchmark scripts loaded as modules, torch's threads restored.

The scripts under benchmarks/ are run as `python benchmarks/<name>.py`, not imported as a package
module; the tests load one from its file and call its `main(argv)` in-process.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_script(name: str) -> ModuleType:
    """benchmarks/<name>.py as a module (registered as `bench_<name>` in sys.modules)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def keep_threads() -> Iterator[None]:
    """The quick modes set torch to 1 thread; give the rest of the session its setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
