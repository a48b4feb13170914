"""The recognizer task through the CLI: training lowers the loss, fine-tuning stages, exports."""

from __future__ import annotations

import torch
from pattern_data import write_patterns
from tiny_recipes import set_args

from hfr.cli import main
from hfr.engine.runlog import read_metrics
from hfr.recognizer.export import load_recognizer

COMMON = set_args(
    "data.size=32",
    "batch_size=16",
    "train.num_workers=0",
    "train.progress=false",
    "train.eval_every=-1",
    "train.sample_every=0",
    "data.eval=none",
    "train.best_metric=none",
)


def _run_dir(runs):
    (run,) = [p for p in runs.glob("*/*") if p.is_dir() and not p.is_symlink()]
    return run


def test_train_recognizer_exports_and_prints_the_file(pattern_data, tmp_path, capsys):
    # learning, exact resume, export/reload and DDP are checked for every task in tests/engine/test_task_contract.py
    runs = tmp_path / "runs"
    code = main(
        [
            "train-recognizer",
            "--config",
            "configs/recognizer/synth-pretrain.yaml",
            "--runs",
            str(runs),
            "--set",
            f"data.train={pattern_data}",
            "--set",
            "train.steps=2",
            "--set",
            "train.log_every=1",
            "--set",
            "train.sample_every=2",
            *COMMON,
        ]
    )
    assert code == 0
    run = _run_dir(runs)
    assert len([m for m in read_metrics(run) if "loss_ce" in m]) == 2
    rec = load_recognizer(run / "recognizer.pt")
    assert rec.arch == "lightcnn9" and rec.input_size == 32 and rec.meta["steps"] == 2
    assert (run / "config.yaml").exists() and list((run / "samples").glob("*.png"))
    assert f"recognizer: {run / 'recognizer.pt'}" in " ".join(capsys.readouterr().out.split())


def test_finetune_warmup_touches_only_the_classifier_then_uses_pairs(tmp_path):
    real = tmp_path / "real"
    write_patterns(real, 6, 3, modalities=("nir", "vis"))
    gen = tmp_path / "gen"
    write_patterns(gen, 10, 1, modalities=("nir", "vis"), seed=5, split="", prefix="g")
    runs = tmp_path / "runs"
    base = [
        "train-recognizer",
        "--config",
        "configs/recognizer/synth-finetune.yaml",
        "--runs",
        str(runs),
        "--set",
        f"data.train={real}",
        "--set",
        f"data.generated={gen}",
        "--set",
        "finetune.pairs_per_batch=4",
        "--set",
        "finetune.warmup_steps=3",
        "--set",
        "net.pretrained=none",
        "--set",
        "train.log_every=1",
        "--set",
        "train.checkpoint_every=3",
        *COMMON,
    ]
    assert main([*base, "--set", "train.steps=3"]) == 0
    run = _run_dir(runs)
    after_warmup = torch.load(run / "checkpoints" / "step-0000003.pt", weights_only=True)["task"]["net"]
    assert main([*base, "--set", "train.steps=5", "--resume", str(run)]) == 0
    logs = read_metrics(run)
    stages = [m["stage"] for m in logs if "stage" in m]
    assert stages == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert all("loss_ct" in m for m in logs if m.get("stage") == 2.0)
    assert not any("loss_ct" in m for m in logs if m.get("stage") == 1.0)
    first = torch.load(run / "checkpoints" / "step-0000005.pt", weights_only=True)["task"]["net"]
    body = [k for k in first if not k.startswith("fc2")]
    assert any(not torch.equal(first[k], after_warmup[k]) for k in body)  # stage II moves the body


def test_warmup_freezes_body(tmp_path):
    real = tmp_path / "real"
    write_patterns(real, 6, 3, modalities=("nir", "vis"))
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "train-recognizer",
                "--config",
                "configs/recognizer/synth-finetune.yaml",
                "--runs",
                str(runs),
                "--set",
                f"data.train={real}",
                "--set",
                "data.generated=none",
                "--set",
                "net.pretrained=none",
                "--set",
                "finetune.warmup_steps=4",
                "--set",
                "train.steps=4",
                "--set",
                "train.checkpoint_every=1",
                "--set",
                "train.keep_checkpoints=10",
                *COMMON,
            ]
        )
        == 0
    )
    run = _run_dir(runs)
    s1 = torch.load(run / "checkpoints" / "step-0000001.pt", weights_only=True)["task"]["net"]
    s4 = torch.load(run / "checkpoints" / "step-0000004.pt", weights_only=True)["task"]["net"]
    assert all(torch.equal(s1[k], s4[k]) for k in s1 if not k.startswith("fc2"))
    assert not torch.equal(s1["fc2.weight"], s4["fc2.weight"])


def test_bad_recipe_values_exit_2(pattern_data, capsys):
    assert (
        main(["train-recognizer", "--config", "configs/recognizer/synth-pretrain.yaml", "--set", "net.arch=resnet"])
        == 2
    )
    assert "net.arch" in capsys.readouterr().err
    assert (
        main(["train-recognizer", "--config", "configs/recognizer/synth-pretrain.yaml", "--set", "optim.lrate=1"]) == 2
    )
    assert "did you mean 'optim.lr'" in capsys.readouterr().err
    assert (
        main(
            [
                "train-recognizer",
                "--config",
                "configs/recognizer/synth-pretrain.yaml",
                "--set",
                f"data.train={pattern_data}",
                "--set",
                "data.split=test",
            ]
        )
        == 2
    )
    assert "no rows of split 'test'" in capsys.readouterr().err


def test_dry_run_prints_resolved_config(capsys):
    assert (
        main(
            [
                "train-recognizer",
                "--config",
                "configs/recognizer/synth-pretrain.yaml",
                "--dry-run",
                "--set",
                "train.steps=7",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "steps: 7" in out and "arch: lightcnn9" in out
