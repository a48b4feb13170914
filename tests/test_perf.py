"""The thread policy every `hfr` command applies (hfr.perf); its speed is measured in benchmarks/thread_policy.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from hfr.errors import ConfigError
from hfr.perf import busy_cores, choose_threads, configure_process, parse_threads, usable_cores


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_thread_settings_parse():
    assert parse_threads(None) is None and parse_threads("auto") is None and parse_threads(" AUTO ") is None
    assert parse_threads("") is None
    assert parse_threads("3") == 3 and parse_threads(2) == 2
    for bad in ("0", "-1", "two", 0):
        with pytest.raises(ConfigError, match="positive integer or 'auto'"):
            parse_threads(bad)


def test_threads_are_the_cores_other_processes_leave_free():
    assert choose_threads(None, 8, 0.0)[0] == 8
    assert choose_threads(None, 2, 1.0)[0] == 1  # one core held by another process
    assert choose_threads(None, 2, 0.4)[0] == 2  # a light load rounds to no busy core
    assert choose_threads(None, 2, 5.0)[0] == 1  # never below one
    assert choose_threads(3, 2, 2.0) == (3, "requested")


def test_busy_cores_reads_a_plausible_share():
    busy = busy_cores(0.05)
    assert 0.0 <= busy <= (os.cpu_count() or 1) + 1e-6
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_a_requested_count_is_applied(monkeypatch):
    monkeypatch.delenv("HFR_THREADS", raising=False)
    assert configure_process(1).threads == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("HFR_THREADS", "2")
    policy = configure_process()
    assert (policy.threads, policy.reason) == (2, "requested") and torch.get_num_threads() == 2
    assert configure_process("1").threads == 1  # the flag wins over the environment


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "HFR_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout.strip()


@pytest.mark.slow  # three interpreter start-ups importing torch: 12 s
def test_waiting_threads_sleep_unless_the_environment_chose():
    code = (
        "from hfr.perf import configure_process; p = configure_process(1); import os, torch; "
        "print(p.wait_policy, os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    )
    assert _run(code) == "passive PASSIVE 1"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE") == "active ACTIVE 1"
    late = "import torch; from hfr.perf import configure_process; print(configure_process(1).wait_policy)"
    assert _run(late) == "default"  # torch loaded first: too late to change, and it says so


def test_the_cli_takes_threads_and_refuses_a_bad_count(capsys):
    from hfr.cli import main

    assert main(["--threads", "0", "data", "stats", "nowhere"]) == 2
    assert "positive integer or 'auto'" in capsys.readouterr().err
    assert (
        _run(
            "from hfr.cli import main; import sys; sys.argv = ['hfr']; "
            "main(['--threads', '1', 'data', 'synth', '--preset', 'multipie', '--dry-run']); "
            "import torch; print(torch.get_num_threads())"
        ).splitlines()[-1]
        == "1"
    )
