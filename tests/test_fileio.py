"""Atomic writes: the target appears whole or not at all, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from hfr.fileio import atomic_open, atomic_write_text


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("new, half written")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize("content", [b"junk", b"garbage bytes that are no zip", b""])
def test_load_weights_only_turns_any_bad_file_into_hfr_error(tmp_path, content):
    from hfr.errors import HFRError
    from hfr.safeload import load_weights_only

    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(HFRError, match="bad.pt: not a readable checkpoint"):
        load_weights_only(path)
