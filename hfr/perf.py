"""Process-level speed settings for CPU work: the glibc "heap" malloc policy.

By default glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh mmap()s
and unmaps them when freed, so every large activation of a forward or backward pass pays
page faults and zeroing: about a fifth of the CPU time of LightCNN-29v2 at 128 px, batch 64,
on the 2-core development machine (`benchmarks/recognizer_speed.py`). The "heap" policy
(mallopt M_MMAP_MAX=0 and a high M_TRIM_THRESHOLD) keeps freed blocks for reuse: the same
math, no page faults after the first pass, at the price of the process keeping its peak
memory until it exits. The `hfr` command sets it at start-up unless the environment says
`HFR_MALLOC=default`; `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2000000000` does the same
for any other Python process.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4


class Allocator:
    """Switches glibc malloc between its default policy and the "heap" policy (see module doc)."""

    def __init__(self) -> None:
        self.libc = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                self.libc = libc

    @property
    def available(self) -> bool:
        """Whether the policy can be set (glibc on Linux)."""
        return self.libc is not None

    def set(self, heap: bool) -> bool:
        """Select the heap policy (True) or glibc's default; returns whether anything was set."""
        if self.libc is None:
            return False
        if heap:
            self.libc.mallopt(_M_MMAP_MAX, 0)
            self.libc.mallopt(_M_TRIM_THRESHOLD, 2_000_000_000)
        else:
            self.libc.mallopt(_M_MMAP_MAX, 65536)
            self.libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
            self.libc.mallopt(_M_TRIM_THRESHOLD, 64 * 1024 * 1024)
        return True


def configure_process() -> None:
    """Apply the speed settings the `hfr` command uses (honours HFR_MALLOC=default)."""
    if os.environ.get("HFR_MALLOC", "heap").lower() != "default":
        Allocator().set(heap=True)
