"""hfr.registry: one behaviour for tasks, recognizer kinds, generator readers and loaders, commands."""

from __future__ import annotations

import json
import logging
from importlib import metadata

import pytest

from hfr.artifacts import GENERATOR_LOADERS, GeneratorFileError
from hfr.engine.task import TASKS
from hfr.errors import ConfigError, HFRError
from hfr.recognizer.export import GENERATOR_READERS, RECOGNIZER_KINDS, RecognizerError
from hfr.registry import Registry


class _Error(HFRError):
    pass


def _registry(monkeypatch, *entry_points: tuple[str, str]) -> Registry:
    reg: Registry = Registry("widget", "hfr.test-widgets", _Error, key="widget:")
    eps = [metadata.EntryPoint(name=n, value=v, group="hfr.test-widgets") for n, v in entry_points]
    monkeypatch.setattr(reg, "_entry_points", lambda: eps)
    return reg


def test_entry_points_load_on_demand_and_names_list_them(monkeypatch):
    reg = _registry(monkeypatch, ("dumps", "json:dumps"), ("loads", "json:loads"))
    assert reg.find("dumps") is json.dumps and "loads" not in reg._entries  # only what was asked for
    assert reg.names() == ["dumps", "loads"] and reg.get("loads") is json.loads
    assert "dumps" in reg and "nothing" not in reg


def test_duplicates_are_refused_whoever_registers(monkeypatch):
    reg = _registry(monkeypatch, ("dumps", "json:dumps"))
    reg.register("dumps", json.dumps)  # the same object again: a no-op
    with pytest.raises(ValueError, match="'dumps' is already registered to json.dumps"):
        reg.register("dumps", json.loads)

    @reg.register_as("mine")
    def mine() -> None:
        """A widget."""

    with pytest.raises(ValueError, match="already registered"):
        reg.register("mine", json.loads)
    reg.unregister("mine")
    reg.register("mine", json.loads)
    assert reg.get("mine") is json.loads


def test_unknown_names_get_the_closest_registered_one(monkeypatch):
    reg = _registry(monkeypatch, ("dumps", "json:dumps"))
    with pytest.raises(
        _Error, match=r"^widget:: unknown widget 'dump'; did you mean 'dumps'\? \(registered: 'dumps'\)"
    ):
        reg.get("dump")
    with pytest.raises(_Error, match=r"^file\.pt: unknown widget 'zzz' \(registered: 'dumps'\)$"):
        reg.get("zzz", where="file.pt")


def test_an_entry_point_that_fails_to_load_is_reported_and_left_out(monkeypatch, caplog):
    reg = _registry(monkeypatch, ("dumps", "json:dumps"), ("broken", "hfr_no_such_module:thing"))
    with caplog.at_level(logging.WARNING):
        assert reg.names() == ["dumps"]
    assert any("broken" in r.getMessage() and "hfr_no_such_module" in r.getMessage() for r in caplog.records)
    with pytest.raises(
        _Error, match="'broken' is installed but its entry point hfr_no_such_module:thing could not be loaded"
    ):
        reg.get("broken")


def test_temporarily_restores_what_was_there(monkeypatch):
    reg = _registry(monkeypatch, ("dumps", "json:dumps"))
    with reg.temporarily("dumps", json.loads):
        assert reg.get("dumps") is json.loads
    assert reg.get("dumps") is json.dumps
    with reg.temporarily("new", json.loads):
        assert "new" in reg.names()
    assert "new" not in reg.names()


def test_the_projects_registries_behave_alike():
    for reg, error, name in (
        (TASKS, ConfigError, "drgan"),
        (RECOGNIZER_KINDS, RecognizerError, "lightcnn"),
        (GENERATOR_READERS, RecognizerError, "drgan"),
        (GENERATOR_LOADERS, GeneratorFileError, "tsgan"),
    ):
        assert name in reg.names() and reg.get(name) is not None
        with pytest.raises(error, match=f"did you mean '{name}'"):
            reg.get(name[:-1] + "x")
