"""Config loading: YAML, typed --set overrides, unknown keys with suggestions, saving."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml

from hfr.config import apply_overrides, field_names, load_config, save_config, to_dict
from hfr.errors import ConfigError


@dataclass
class Optim:
    lr: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])


@dataclass
class Recipe:
    name: str = "demo"
    size: int = 64
    amp: bool = False
    pretrained: str | None = None
    optim: Optim = field(default_factory=Optim)

    def validate(self) -> None:
        if self.size < 8:
            raise ConfigError(f"size must be >= 8, got {self.size}")


def test_defaults_file_then_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("size: 96\noptim:\n  lr: 0.01\n")
    cfg = load_config(Recipe, path, ["optim.lr=2e-4", "amp=true", "name=x"])
    assert cfg.size == 96
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.optim.betas == [0.5, 0.999]
    assert cfg.amp is True
    assert cfg.name == "x"


def test_override_types_are_checked():
    with pytest.raises(ConfigError, match="size.*integer"):
        load_config(Recipe, None, ["size=big"])
    with pytest.raises(ConfigError, match="true or false"):
        load_config(Recipe, None, ["amp=3"])


def test_string_override_keeps_text_and_none_for_optional():
    cfg = load_config(Recipe, None, ["name=007", "pretrained=none"])
    assert cfg.name == "007" and cfg.pretrained is None
    cfg = load_config(Recipe, None, ["pretrained=weights/a.pt"])
    assert cfg.pretrained == "weights/a.pt"


def test_list_override_accepts_commas_and_yaml():
    assert load_config(Recipe, None, ["optim.betas=0.9,0.99"]).optim.betas == [0.9, 0.99]
    assert load_config(Recipe, None, ["optim.betas=[0.0, 0.9]"]).optim.betas == [0.0, 0.9]


def test_unknown_key_suggests_closest(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'optim.lr'"):
        load_config(Recipe, None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="did you mean 'size'"):
        load_config(Recipe, None, ["sise=3"])
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lrate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*lrate.*did you mean 'lr'"):
        load_config(Recipe, path)


def test_missing_or_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Recipe, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("size: [1,\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Recipe, bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Recipe, top)


def test_validate_hook_runs():
    with pytest.raises(ConfigError, match="size must be >= 8"):
        load_config(Recipe, None, ["size=4"])


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides(Recipe, {}, ["size"])


def test_save_round_trips(tmp_path):
    cfg = load_config(Recipe, None, ["optim.lr=0.5", "pretrained=a.pt"])
    path = save_config(cfg, tmp_path / "out" / "config.yaml")
    assert yaml.safe_load(path.read_text()) == to_dict(cfg)
    again = load_config(Recipe, path)
    assert again == cfg


def test_field_names_lists_leaves():
    assert field_names(Recipe) == ["name", "size", "amp", "pretrained", "optim.lr", "optim.betas"]
