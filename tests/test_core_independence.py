"""The core (`hfr/`) never imports a method package: methods plug in through entry points only."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

HFR = Path(__file__).resolve().parents[1] / "hfr"
METHODS = {"drgan", "dvg", "tsgan"}


def _imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports (at any depth of the file: functions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_hfr_imports_no_method_package():
    offenders = {
        str(p.relative_to(HFR.parent)): sorted(_imported_packages(p) & METHODS)
        for p in sorted(HFR.rglob("*.py"))
        if _imported_packages(p) & METHODS
    }
    assert offenders == {}


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from drgan.export import load_generator\n    import dvg.task as t\n")
    assert _imported_packages(module) == {"drgan", "dvg"}


def test_every_method_task_is_an_entry_point_of_its_own_package():
    tasks = {ep.name: ep.value for ep in metadata.entry_points(group="hfr.tasks")}
    assert tasks["recognizer"].startswith("hfr.recognizer.")  # the built-in task registers like the others
    for name, value in tasks.items():
        assert ":" in value, f"{name} = {value}: an entry point names the task class, not a module to import"
