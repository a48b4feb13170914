"""The drgan task through `hfr train-generator`: its files, pose sweep, omega, bad input.

Learning, exact resume, export and DDP: tests/engine/test_task_contract.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tiny_recipes import DRGAN_RECIPE, DRGAN_TINY, set_args

from drgan.task import mirror_bins, yaw_to_bins
from hfr.cli import main
from hfr.data.manifest import Manifest, make_record
from hfr.engine.runlog import read_metrics
from hfr.nn.ranges import to_unit
from hfr.viz import tensor_to_images


def _run(runs):
    (run,) = [p for p in runs.glob("*/*") if p.is_dir() and not p.is_symlink()]
    return run


def test_train_generator_writes_both_files_a_pose_sweep_and_the_l1_term(multipie, tmp_path, capsys):
    # learning, exact resume, export/reload and DDP are checked for every task in tests/engine/test_task_contract.py
    runs = tmp_path / "runs"
    code = main(
        [
            "train-generator",
            "--config",
            DRGAN_RECIPE,
            "--runs",
            str(runs),
            "--set",
            f"data.train={multipie}",
            "--set",
            "train.steps=2",
            "--set",
            "train.log_every=1",
            "--set",
            "loss.l1_weight=1",
            "--set",
            "train.sample_every=2",
            "--set",
            "augment.flip_p=0",
            *DRGAN_TINY,
        ]
    )
    assert code == 0
    run = _run(runs)
    logs = [m for m in read_metrics(run) if "loss_d" in m]
    assert len(logs) == 2 and all("loss_l1" in m and "acc_pose" in m for m in logs)
    assert (run / "generator.pt").is_file() and (run / "recognizer.pt").is_file()
    (grid,) = (run / "samples").glob("*.png")
    from PIL import Image

    w, h = Image.open(grid).size
    assert w > 9 * 32 and w // (h // 8) == 10  # 8 rows of input + 9 pose bins
    out = capsys.readouterr().out
    assert "generator:" in out and "recognizer:" in out


def test_multi_image_logs_omega(multipie, tmp_path):
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train-generator",
                "--config",
                "configs/drgan/synth-multipie-multi.yaml",
                "--runs",
                str(runs),
                "--set",
                f"data.train={multipie}",
                "--set",
                "train.steps=2",
                "--set",
                "train.log_every=1",
                *DRGAN_TINY,
            ]
        )
        == 0
    )
    logs = [m for m in read_metrics(_run(runs)) if "omega_mean" in m]
    assert len(logs) == 2 and all(0 < m["omega_mean"] < 1 for m in logs)


def _manifest(root, yaws):
    recs = []
    for s in range(2):
        for i, yaw in enumerate(yaws):
            name = f"s{s}/{i}.png"
            from hfr.data.imageio import write_png

            write_png(root / name, np.full((32, 32, 3), 40 * i + 20 * s, np.uint8))
            recs.append(make_record(name, f"s{s}", "vis", yaw, "train"))
    Manifest(recs, root).write(root)
    return root


def _train_one_step(data: Path, runs: Path, *sets: str) -> int:
    """`hfr train-generator` of the tiny DR-GAN recipe for one step on `data`."""
    args = set_args(f"data.train={data}", "train.steps=1")
    return main(
        ["train-generator", "--config", DRGAN_RECIPE, "--runs", str(runs), *args, *DRGAN_TINY, *set_args(*sets)]
    )


def test_rows_without_yaw_are_an_error(tmp_path, capsys):
    data = _manifest(tmp_path / "d", [0.0, None, 30.0])
    assert _train_one_step(data, tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "no yaw" in err and "row 3" in err


def test_a_single_pose_is_an_error(tmp_path, capsys):
    data = _manifest(tmp_path / "d", [15.0, 14.0, 16.0])
    assert _train_one_step(data, tmp_path / "r") == 2
    assert "one pose bin" in capsys.readouterr().err


def test_yaws_outside_the_bins_are_counted(tmp_path, caplog):
    data = _manifest(tmp_path / "d", [0.0, 30.0, 90.0, -75.0])
    with caplog.at_level(logging.WARNING):
        assert _train_one_step(data, tmp_path / "r", "batch_size=4") == 0
    assert any("4 of 8 training rows" in r.getMessage() for r in caplog.records)


def test_yaw_binning_and_mirroring():
    bins = [-60.0, -30.0, 0.0, 30.0, 60.0]
    idx, outside = yaw_to_bins(np.array([-61.0, -44.0, 7.0, 16.0, 76.0, 74.0]), bins)
    assert idx.tolist() == [0, 1, 2, 3, 4, 4] and outside == 1
    assert mirror_bins(bins).tolist() == [4, 3, 2, 1, 0]
    assert mirror_bins([0.0, 15.0, 30.0]).tolist() == [0, 0, 0]


def test_sample_grid_is_a_pose_sweep(multipie):
    from drgan.models import Generator
    from drgan.task import pose_sweep

    g = Generator(32, 9, width=0.25)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    grid = pose_sweep(g, x, seed=3)
    assert grid.shape == (20, 3, 32, 32)
    assert torch.equal(grid[0], x[0]) and torch.equal(grid[10], x[1])
    assert torch.equal(grid, pose_sweep(g, x, seed=3)) and g.training
    assert len(tensor_to_images(to_unit(grid))) == 20
