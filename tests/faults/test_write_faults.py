"""Fault injection on the write and resume paths: full disks, killed writes, unreadable checkpoints, bad input.

Each test stands for a case of issue 12 that lost data or failed with a traceback before; the
gallery cases are in test_gallery_faults.py, the image bit depths in test_image_depths.py.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_toy import ToyConfig, ToyTask, weights_hash, write_toy_dataset
from pattern_data import write_patterns
from tiny_recipes import set_args

import hfr.fileio
from hfr.cli import main
from hfr.data.manifest import Manifest
from hfr.engine import TrainConfig, train
from hfr.engine.checkpoint import list_checkpoints
from hfr.engine.rundir import run_dirs
from hfr.errors import WriteError
from hfr.fileio import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]


def _full_disk(monkeypatch: pytest.MonkeyPatch, when: str = "") -> None:
    """Make every fsync (of files whose name contains `when`) fail as a full disk does."""
    real = os.fsync

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if when in name:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(hfr.fileio.os, "fsync", fsync)


def test_a_full_disk_is_one_line_naming_the_file_and_the_old_file_stays(tmp_path, monkeypatch):
    target = tmp_path / "kept.txt"
    atomic_write_text(target, "old")
    _full_disk(monkeypatch)
    with pytest.raises(WriteError, match=r"kept\.txt: cannot write it \(the disk is full\); free some space"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_a_full_disk_during_synth_leaves_no_half_written_dataset(tmp_path, monkeypatch, capsys):
    out = tmp_path / "multipie"

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    code = main(["data", "synth", "--preset", "multipie", "--subjects", "2", "--size", "32", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "the disk is full" in err and str(out) in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []  # neither the folder nor the temporary render is left


def test_synth_refuses_a_file_or_a_folder_with_something_in_it(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    assert main(["data", "synth", "--preset", "multipie", "--subjects", "2", "--out", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err and a_file.read_text() == "mine"
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.png").write_bytes(b"x")
    assert main(["data", "synth", "--preset", "multipie", "--subjects", "2", "--out", str(full)]) == 2
    assert "not empty" in capsys.readouterr().err and (full / "keep.png").read_bytes() == b"x"


def test_synth_clears_a_dead_render_and_renders_into_an_empty_folder(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    dead = tmp_path / ".set.synth-999999999"  # no such process
    (dead / "images").mkdir(parents=True)
    assert main(["data", "synth", "--preset", "multipie", "--subjects", "2", "--size", "32", "--out", str(out)]) == 0
    assert not dead.exists() and len(Manifest.read(out)) > 0


def _toy_config(data: Path, steps: int) -> ToyConfig:
    return ToyConfig(
        data=str(data),
        batches_per_epoch=6,
        train=TrainConfig(steps=steps, log_every=1, checkpoint_every=2, device="cpu", progress=False),
    )


def test_a_full_disk_at_a_checkpoint_stops_naming_the_last_complete_one(tmp_path, monkeypatch):
    data = write_toy_dataset(tmp_path / "data")
    train(ToyTask(), _toy_config(data, 2), recipe="toy", runs_root=tmp_path / "runs")
    _full_disk(monkeypatch, when="step-0000004")
    with pytest.raises(
        WriteError,
        match=r"step-0000004\.pt: cannot write it \(the disk is full\).*Training stopped "
        r"after step 4; the last complete checkpoint is .*step-0000002\.pt",
    ):
        train(ToyTask(), _toy_config(data, 6), recipe="toy", runs_root=tmp_path / "runs", resume="auto")
    monkeypatch.undo()
    (run,) = run_dirs("toy", tmp_path / "runs")
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [2]  # and no temporary file is left
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000002.pt"]
    result = train(ToyTask(), _toy_config(data, 6), recipe="toy", runs_root=tmp_path / "runs", resume="auto")
    assert result["step"] == 6 and result["resumed_from"].endswith("step-0000002.pt")


@pytest.mark.slow  # a training subprocess killed and resumed: 10 s
def test_a_run_killed_mid_checkpoint_resumes_exactly_and_its_leftover_goes(tmp_path):
    data = write_toy_dataset(tmp_path / "data")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("kill_mid_checkpoint.py")), str(data), str(tmp_path / "runs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL, half of step-4 written
    (run,) = run_dirs("toy", tmp_path / "runs")
    leftovers = list((run / "checkpoints").glob(".step-0000004.pt.*.tmp"))
    assert len(leftovers) == 1 and [s for s, _ in list_checkpoints(run / "checkpoints")] == [2]
    resumed = ToyTask()
    result = train(resumed, _toy_config(data, 6), recipe="toy", runs_root=tmp_path / "runs", resume="auto")
    assert result["resumed_from"].endswith("step-0000002.pt") and not leftovers[0].exists()
    straight = ToyTask()
    train(straight, _toy_config(data, 6), recipe="straight", runs_root=tmp_path / "runs")
    assert weights_hash(resumed) == weights_hash(straight)


def test_resume_auto_passes_over_an_unreadable_checkpoint_and_an_empty_newer_run(tmp_path, caplog):
    data = write_toy_dataset(tmp_path / "data")
    runs = tmp_path / "runs"
    train(ToyTask(), _toy_config(data, 4), recipe="toy", runs_root=runs)
    (run,) = run_dirs("toy", runs)
    newest = run / "checkpoints" / "step-0000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short
    newer = runs / "toy" / "29991231-235959"  # a run that stopped before its first checkpoint
    newer.mkdir()
    with caplog.at_level("WARNING"):
        result = train(ToyTask(), _toy_config(data, 6), recipe="toy", runs_root=runs, resume="auto")
    assert result["resumed_from"].endswith("step-0000002.pt") and Path(result["run_dir"]) == run
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "skipping" in messages and "step-0000004.pt" in messages and str(newer) in messages
    assert len(run_dirs("toy", runs)) == 2  # no third run from step 0


def test_resume_auto_with_nothing_readable_is_an_error_not_a_fresh_start(tmp_path, capsys):
    data = write_toy_dataset(tmp_path / "data")
    train(ToyTask(), _toy_config(data, 2), recipe="toy", runs_root=tmp_path / "runs")
    (run,) = run_dirs("toy", tmp_path / "runs")
    (run / "checkpoints" / "step-0000002.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    from hfr.engine.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint of 'toy' .* loads .*start a new run without --resume"):
        train(ToyTask(), _toy_config(data, 4), recipe="toy", runs_root=tmp_path / "runs", resume="auto")


def _train_recognizer(tmp_path: Path, *sets: str) -> int:
    """`hfr train-recognizer` of the synth-pretrain recipe, 2 steps on a tiny pattern set, with `sets`."""
    write_patterns(tmp_path / "faces", 4, 3)
    tiny = (
        f"data.train={tmp_path / 'faces'}",
        "data.size=32",
        "batch_size=8",
        "train.steps=2",
        "train.progress=false",
        "train.num_workers=0",
        *sets,
    )
    recipe = ROOT / "configs/recognizer/synth-pretrain.yaml"
    return main(["train-recognizer", "--config", str(recipe), "--runs", str(tmp_path / "runs"), *set_args(*tiny)])


def test_a_best_metric_the_run_cannot_compute_is_refused_before_the_first_step(tmp_path, capsys):
    code = _train_recognizer(tmp_path, "data.eval=")  # the recipe selects best.pt by rank1_mean
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "train.best_metric='rank1_mean'" in err and "evaluates nothing" in err
    assert not list((tmp_path / "runs").rglob("metrics.jsonl"))  # not a single step ran


def test_a_best_metric_outside_the_protocol_names_the_valid_ones(tmp_path, capsys):
    from hfr.data.synth import SynthConfig, write_preset

    write_preset(SynthConfig(preset="multipie", subjects=3, size=32, seed=0, workers=1), tmp_path / "mp")
    code = _train_recognizer(tmp_path, f"data.eval={tmp_path / 'mp'}", "train.best_metric=rank1@90")
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "'rank1@90' is not among" in err and "rank1@60" in err and "rank1_mean" in err


def test_a_manifest_without_rows_is_refused_by_embed(tmp_path, capsys):
    write_patterns(tmp_path / "faces", 2, 1)
    (tmp_path / "empty.csv").write_text((tmp_path / "faces" / "manifest.csv").read_text().splitlines()[0] + "\n")
    torch.manual_seed(0)
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer

    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), tmp_path / "r.pt")
    code = main(
        [
            "embed",
            "--recognizer",
            str(tmp_path / "r.pt"),
            "--data",
            str(tmp_path / "empty.csv"),
            "--out",
            str(tmp_path / "f.npy"),
        ]
    )
    assert code == 2 and "header and no rows" in capsys.readouterr().err and not (tmp_path / "f.npy").exists()


def _mount_tiny_tmpfs(where: Path) -> bool:
    where.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(where)], capture_output=True)
    return proc.returncode == 0


@pytest.mark.slow
def test_a_real_full_disk_during_synth(tmp_path, capsys):
    disk = tmp_path / "tiny"
    if not _mount_tiny_tmpfs(disk):
        pytest.skip("mounting a tmpfs needs root")
    try:
        code = main(
            ["data", "synth", "--preset", "multipie", "--subjects", "6", "--size", "64", "--out", str(disk / "set")]
        )
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and "the disk is full" in err and list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)
