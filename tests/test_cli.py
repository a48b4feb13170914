"""The `hfr` command line: exit codes, one-line errors, outputs of each data command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_datasets import write_casia, write_folder  # noqa: E402

from hfr.cli import main  # noqa: E402
from hfr.data.imageio import read_image, write_png  # noqa: E402
from hfr.data.manifest import Manifest  # noqa: E402


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert "hfr" in capsys.readouterr().out


def test_missing_subcommand_is_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_console_script_runs_and_reports_errors_on_one_line(tmp_path):
    exe = Path(sys.executable).with_name("hfr")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hfr.cli"]
    proc = subprocess.run(
        [*cmd, "data", "stats", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "manifest not found" in lines[0]


def test_data_index_folder_then_stats_and_show(tmp_path, capsys):
    root = write_folder(tmp_path / "photos")
    out = tmp_path / "index" / "photos.csv"
    assert main(["data", "index", str(root), "--format", "folder", "--out", str(out)]) == 0
    manifest = Manifest.read(out)
    assert len(manifest) > 0 and set(manifest.modalities()) <= {"vis", "nir"}
    stats_json = tmp_path / "stats.json"
    assert main(["data", "stats", str(out), "--json", str(stats_json)]) == 0
    stats = json.loads(stats_json.read_text())
    assert stats["images"] == len(manifest) and stats["subjects"] == len(manifest.subjects())
    sheet = tmp_path / "sheet.png"
    assert main(["data", "show", str(out), "--by", "modality", "--out", str(sheet)]) == 0
    assert read_image(sheet, "RGB").shape[2] == 3
    assert "contact sheet" in capsys.readouterr().out


def test_data_index_bad_format_and_missing_root(tmp_path, capsys):
    assert main(["data", "index", str(tmp_path), "--format", "yale", "--out", str(tmp_path / "m.csv")]) == 2
    assert "unknown dataset format 'yale'" in capsys.readouterr().err
    assert main(["data", "index", str(tmp_path / "absent"), "--format", "lfw", "--out", str(tmp_path / "m.csv")]) == 2
    assert not (tmp_path / "m.csv").exists()


def test_data_index_skip_missing_reports(tmp_path, capsys):
    root = write_casia(tmp_path / "casia")
    victim = next(root.rglob("*.bmp"))
    victim.unlink()
    out = tmp_path / "casia.csv"
    assert main(["data", "index", str(root), "--format", "casia-nirvis2", "--out", str(out)]) == 2
    assert victim.name in capsys.readouterr().err
    assert not out.exists()
    assert main(["data", "index", str(root), "--format", "casia-nirvis2", "--out", str(out), "--skip-missing"]) == 0
    assert "dropped" in capsys.readouterr().out
    report = tmp_path / "casia.dropped.csv"
    assert report.exists() and victim.name in report.read_text()


def test_data_stats_bad_row_names_row(tmp_path, capsys):
    write_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "manifest.csv").write_text("path,subject,modality,yaw,split\na.png,s1,uv,0,train\n")
    assert main(["data", "stats", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "row 2" in err and "'uv'" in err


def test_data_show_bad_axis(tiny_dataset, tmp_path, capsys):
    assert main(["data", "show", str(tiny_dataset.source), "--by", "mood", "--out", str(tmp_path / "x.png")]) == 2
    assert "--by 'mood'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_data_align_writes_crops_and_manifest(tmp_path, capsys):
    from hfr.data.align import template_points

    pts, size = template_points("lightcnn128")
    img = np.zeros((160, 160), np.uint8)
    shifted = pts.numpy() + 12.0
    for x, y in shifted:
        img[int(round(y)), int(round(x))] = 255
    write_png(tmp_path / "raw" / "a.png", img)
    coords = ",".join(f"{v:.3f}" for xy in shifted for v in xy)
    csv_path = tmp_path / "raw" / "landmarks.csv"
    header = "path,subject," + ",".join(f"x{i},y{i}" for i in range(1, 6))
    csv_path.write_text(f"{header}\na.png,p1,{coords}\n")
    out = tmp_path / "aligned"
    assert main(["data", "align", "--landmarks", str(csv_path), "--out", str(out)]) == 0
    manifest = Manifest.read(out)
    assert [r.subject for r in manifest] == ["p1"]
    crop = read_image(manifest.image_path(0))
    assert crop.shape == (size, size)
    x, y = pts[0].round().int().tolist()
    assert crop[y - 1 : y + 2, x - 1 : x + 2].max() > 100  # the left-eye dot lands on the template
    csv_path.write_text(f"{header}\na.png,p1,ab,{coords.split(',', 1)[1]}\n")
    assert main(["data", "align", "--landmarks", str(csv_path), "--out", str(tmp_path / "o2")]) == 2
    assert "row 2" in capsys.readouterr().err
    assert (
        main(["data", "align", "--landmarks", str(csv_path), "--out", str(tmp_path / "o3"), "--template", "square"])
        == 2
    )


def test_data_synth_flags_errors_and_dry_run(tmp_path, capsys):
    out = tmp_path / "mp"
    assert main(["data", "synth", "--preset", "multipie", "--subjects", "2", "--size", "32", "--out", str(out)]) == 0
    manifest = Manifest.read(out)
    assert len(manifest.subjects()) == 2 and (out / "preset.yaml").exists()
    assert "manifest:" in capsys.readouterr().out
    assert main(["data", "synth", "--preset", "multipie", "--size", "20", "--out", str(tmp_path / "x")]) == 2
    assert "'size'" in capsys.readouterr().err
    assert main(["data", "synth", "--preset", "faces", "--out", str(tmp_path / "y")]) == 2
    assert "'preset'" in capsys.readouterr().err
    assert main(["data", "synth", "--preset", "nirvis"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["data", "synth", "--preset", "nirvis", "--set", "subjectz=3"]) == 2
    assert "did you mean 'subjects'" in capsys.readouterr().err
    assert main(["data", "synth", "--preset", "nirvis", "--subjects", "7", "--dry-run"]) == 0
    assert "subjects: 7" in capsys.readouterr().out
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ---------------------------------------------------------------------- command groups and plug-ins
@pytest.fixture
def commands(monkeypatch):
    """A fresh registry of method command groups (the installed entry points), swapped into hfr.cli."""
    from hfr import cli
    from hfr.registry import Registry

    registry: Registry[Callable[[Any], None]] = Registry("command group", cli.ENTRY_POINT_GROUP)
    monkeypatch.setattr(cli, "COMMANDS", registry)
    return registry


def _subcommands(parser) -> set[str]:
    import argparse

    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(action.choices)


def test_method_commands_arrive_through_entry_points(commands):
    from importlib import metadata

    from hfr.cli import build_parser

    declared = {ep.name: ep.value for ep in metadata.entry_points(group="hfr.commands")}
    assert declared == {
        "drgan": "drgan.commands:register",
        "dvg": "dvg.commands:register",
        "tsgan": "tsgan.commands:register",
    }
    names = _subcommands(build_parser())
    assert {"rotate", "generate-pairs", "deocclude"} <= names
    assert {
        "quickstart",
        "train-recognizer",
        "train-generator",
        "evaluate",
        "embed",
        "gallery",
        "search",
        "data",
    } <= names


def test_a_broken_plugin_is_a_warning_and_the_rest_still_works(commands, monkeypatch, caplog, tmp_path, capsys):
    from importlib import metadata

    from hfr.cli import build_parser

    real = commands._entry_points
    broken = metadata.EntryPoint(name="broken", value="no_such_module_hfr_test:register", group="hfr.commands")
    monkeypatch.setattr(commands, "_entry_points", lambda: [*real(), broken])

    def register_raises(sub):
        raise RuntimeError("bug in a plug-in")

    with commands.temporarily("raiser", register_raises), caplog.at_level("WARNING"):
        names = _subcommands(build_parser())
        assert main(["data", "stats", str(tmp_path / "nowhere")]) == 2  # a core command still runs
    assert "rotate" in names and "broken" not in names
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("broken" in w and "no_such_module_hfr_test" in w for w in warnings)
    assert any("raiser" in w and "bug in a plug-in" in w for w in warnings)
    assert "manifest not found" in capsys.readouterr().err


def test_a_new_method_adds_a_command_without_touching_hfr(commands, capsys):
    from hfr.cli.common import console

    def wave(args) -> int:
        console.print("wave " * args.times)
        return 0

    def register(sub):
        p = sub.add_parser("wave", help="a fourth method's command")
        p.add_argument("--times", type=int, default=1)
        p.set_defaults(func=wave)

    with commands.temporarily("fourth", register):
        assert main(["wave", "--times", "2"]) == 0
    assert "wave wave" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["wave"])  # gone with the plug-in


def test_help_does_not_load_torch_and_python_m_works():
    code = "import sys, hfr.cli; hfr.cli.build_parser(); print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "hfr.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("hfr ")


def test_the_core_does_not_import_the_methods():
    import re

    root = Path(__file__).resolve().parents[1] / "hfr"
    pattern = re.compile(r"^\s*(from|import)\s+(drgan|dvg|tsgan)\b", re.MULTILINE)
    offenders = [
        str(p.relative_to(root.parent))
        for p in sorted(root.rglob("*.py"))
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
