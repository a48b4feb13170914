"""Process-level speed settings for CPU work: the thread policy and the glibc "heap" malloc policy.

**Threads.** Torch's default (one OpenMP thread per core, threads that spin while they wait)
is fastest on an idle machine and collapses when another process wants a core: on the 2-core
development machine, with one other process keeping a core busy, a training step ran 5x slower
with 2 spinning threads than with 1 (`benchmarks/thread_policy.py`). The `hfr` command therefore
(1) makes waiting threads sleep (`OMP_WAIT_POLICY=PASSIVE`, set before torch loads) and
(2) uses one thread per core that other processes leave free when it starts (measured over
0.2 s from /proc/stat, at least 1). `--threads N` or `HFR_THREADS=N` fix the count
(`HFR_THREADS=auto` is the default policy); an `OMP_WAIT_POLICY` already in the environment is
kept. `benchmarks/thread_policy.py` measures the policies quiet and under contention.

**Malloc.**
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
import logging
import os
import sys
import time
from dataclasses import dataclass

from hfr.errors import ConfigError

log = logging.getLogger(__name__)

#: The environment variable that fixes the thread count ("auto" or a positive integer).
THREADS_ENV = "HFR_THREADS"

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


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        with contextlib.suppress(OSError):
            return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(window_s: float = 0.2) -> float:
    """How many cores other processes keep busy now (this process sleeps while it measures).

    Linux: the busy share of all CPUs over `window_s` from /proc/stat, times the CPU count.
    Elsewhere: the 1-minute load average (slower to follow a change), or 0 when unknown.
    """
    first = _cpu_times()
    if first is not None:
        time.sleep(window_s)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            share = (second[0] - first[0]) / (second[1] - first[1])
            return max(0.0, share) * (os.cpu_count() or 1)
    with contextlib.suppress(OSError, AttributeError):
        return float(os.getloadavg()[0])
    return 0.0


def parse_threads(value: str | int | None) -> int | None:
    """A thread-count setting: None or "auto" -> None (the policy decides), else a positive integer."""
    if value is None:
        return None
    if isinstance(value, int):
        text = str(value)
    else:
        text = value.strip().lower()
        if text in ("", "auto"):
            return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"thread count {value!r}: give a positive integer or 'auto' (--threads / {THREADS_ENV})")
    return n


@dataclass(frozen=True)
class ThreadPolicy:
    """What `configure_process` chose: torch threads, the OpenMP wait policy in force, and why."""

    threads: int
    wait_policy: str
    reason: str


def choose_threads(requested: int | None, cores: int, busy: float) -> tuple[int, str]:
    """(threads, reason): `requested` when given, else the cores that `busy` cores of other work leave free."""
    if requested is not None:
        return requested, "requested"
    free = max(1, cores - int(round(busy)))
    return free, f"{cores} core(s), {busy:.1f} busy with other processes"


def set_wait_policy() -> str:
    """Make OpenMP threads sleep while they wait (`OMP_WAIT_POLICY=PASSIVE`), unless the environment chose.

    Takes effect only when torch's OpenMP runtime has not started yet (the `hfr` command calls
    this before importing torch); returns the policy in force ("passive", "active", or
    "default" when torch was already loaded with none set).
    """
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return os.environ.get("OMP_WAIT_POLICY", "default").lower()


def configure_process(threads: str | int | None = None) -> ThreadPolicy:
    """Apply the `hfr` command's speed settings: wait and thread policy, heap malloc (module doc).

    `threads`: a count or "auto"; None reads `HFR_THREADS` (default auto). Honours
    `HFR_MALLOC=default`. Call it before torch is imported for the wait policy to apply.
    """
    wait = set_wait_policy()
    requested = parse_threads(threads if threads is not None else os.environ.get(THREADS_ENV))
    count, reason = choose_threads(requested, usable_cores(), busy_cores() if requested is None else 0.0)
    import torch

    torch.set_num_threads(count)
    if os.environ.get("HFR_MALLOC", "heap").lower() != "default":
        Allocator().set(heap=True)
    policy = ThreadPolicy(count, wait, reason)
    log.debug("threads: %d (%s), OpenMP wait policy %s", policy.threads, policy.reason, policy.wait_policy)
    return policy
