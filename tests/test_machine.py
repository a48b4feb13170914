"""hfr.machine: the machine description benchmarks record."""

from __future__ import annotations

import os

import torch

from hfr.machine import cpu_model, machine_info


def test_machine_info_describes_this_process_and_takes_extra_fields():
    info = machine_info(device="cpu", torch_threads=3)
    assert info["cpu_count"] == os.cpu_count()
    assert info["torch"] == torch.__version__
    assert info["torch_threads"] == 3 and info["device"] == "cpu"  # extra fields win
    assert info["cpu"] == cpu_model() and info["cpu"]
    assert ("gpu" in info) == torch.cuda.is_available()
