"""Run folders: timestamped, never reused, and a `latest` link to the newest."""

from __future__ import annotations

from hfr.engine.rundir import latest_run_dir, new_run_dir


def test_new_runs_are_distinct_and_latest_follows(tmp_path):
    runs = [new_run_dir("r", tmp_path) for _ in range(3)]
    assert len(set(runs)) == 3
    assert latest_run_dir("r", tmp_path) == runs[-1]
    link = tmp_path / "r" / "latest"
    assert link.is_symlink() and link.resolve() == runs[-1].resolve()
    assert latest_run_dir("absent", tmp_path) is None


def test_suffix_order_is_numeric(tmp_path):
    base = tmp_path / "r"
    for name in ("20260101-000000", "20260101-000000-2", "20260101-000000-10"):
        (base / name).mkdir(parents=True)
    latest = latest_run_dir("r", tmp_path)
    assert latest is not None and latest.name == "20260101-000000-10"
