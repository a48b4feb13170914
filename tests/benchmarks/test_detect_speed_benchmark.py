"""Smoke test of `benchmarks/detect_speed.py --quick` (needs the `detect` extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import keep_threads, load_script  # noqa: F401  (keep_threads: autouse fixture)

pytestmark = pytest.mark.slow  # about 6 s: renders, MTCNN and dlib's models


def test_detect_speed_quick_writes_every_line(tmp_path: Path) -> None:
    pytest.importorskip("facenet_pytorch")
    pytest.importorskip("skimage")
    bench = load_script("detect_speed")
    assert bench.main(["--quick", "--out", str(tmp_path), "--threads", "1", "--devices", "cpu"]) == 0
    data = json.loads((tmp_path / "detect_speed.json").read_text())
    assert [r["size"] for r in data["detection"]] == ["640x480", "128x128"]
    for row in data["detection"]:
        assert row["photos"] == 4 and row["photos_per_s"] > 0 and row["detect_s"] > 0
        assert row["faces_per_photo"] == 1.0  # the astronaut, found in every variant
    line = data["dlib_resnet"]
    assert isinstance(line, str) and "dlib" in line or line["images_per_s"] > 0
    assert data["settings"]["quick"] is True and "cpu" in data["machine"]
