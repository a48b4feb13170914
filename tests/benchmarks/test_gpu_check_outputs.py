"""benchmarks/gpu_check.sh and what it runs: CUDA figures go beside the CPU results, never over them.

The GPU check runs where no test can (no GPU here), so these tests check what can go wrong before it
runs: its syntax, that every benchmark it starts writes a `*_cuda.json` file, that train_speed keeps
other devices' rows, and that search_speed's `--face-methods` (which keeps the check within its time)
measures only what it names.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from benchmark_scripts import ROOT, keep_threads, load_script  # noqa: F401  (keep_threads: autouse)

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _commands(text: str) -> list[str]:
    """The script's lines with continuations joined."""
    return text.replace("\\\n", " ").splitlines()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_parses_and_writes_only_cuda_results():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    runs = [line for line in _commands(SCRIPT.read_text()) if re.search(r"python benchmarks/\w+\.py", line)]
    assert {re.search(r"benchmarks/(\w+)\.py", line).group(1) for line in runs} == {  # type: ignore[union-attr]
        "search_speed",
        "train_speed",
        "recognizer_speed",
    }
    for line in runs:
        out = re.search(r"--out (\S+)", line)
        assert out is not None, f"writes the CPU results by default: {line.strip()}"
        assert out.group(1).startswith("benchmarks/results/") and out.group(1).endswith("_cuda.json")
        assert line.lstrip().startswith('check "'), f"a failure would stop the later steps: {line.strip()}"


def test_train_speed_keeps_rows_of_other_devices_methods_and_batches(tmp_path):
    train_speed = load_script("train_speed")
    path = tmp_path / "train_speed.json"
    rows = [
        {"method": "drgan", "batch": 32, "device": "cpu"},
        {"method": "drgan", "batch": 32, "device": "cuda"},
        {"method": "drgan", "batch": 8, "device": "cuda"},
        {"method": "dvg", "batch": 32, "device": "cuda"},
    ]
    path.write_text(json.dumps({"results": rows}))
    kept = train_speed.kept_rows(path, ["drgan"], 32, ["cuda"])  # a --device cuda --methods drgan run
    assert kept == [rows[0], rows[2], rows[3]]
    assert train_speed.kept_rows(path, ["drgan", "dvg"], 32, ["cpu", "cuda"]) == [rows[2]]
    assert train_speed.kept_rows(tmp_path / "none.json", ["drgan"], 32, ["cpu"]) == []


def test_search_speed_face_methods_measures_only_those(tmp_path, capsys):
    search_speed = load_script("search_speed")
    out = tmp_path / "s.json"
    argv = ["--sizes", "", "--face-sizes", "2000", "--probes", "40", "--face-methods", "flat,ivfpq-32"]
    assert search_speed.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["method"] for r in result["face_results"]] == ["brute", "flat", "ivfpq-32"]
    assert result["settings"]["face_methods"] == ["flat", "ivfpq-32"]
    assert result["face_results"][1]["recall_at_1_vs_brute"] == 1.0
    assert not out.with_suffix(".png").exists()  # the plot is of uniform-vector rows: none in a face-only run
    with pytest.raises(SystemExit) as exc:
        search_speed.main(["--face-methods", "flat,hnsw", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2 and "unknown hnsw" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
