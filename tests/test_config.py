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


# ---------------------------------------------------------------------- recipes with base:
def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_chain_merges_nested_keys_then_sets(tmp_path):
    from hfr.config import read_recipe

    _write(tmp_path / "a.yaml", "name: a\nsize: 32\noptim:\n  lr: 0.5\n  betas: [0.1, 0.2]\n")
    _write(tmp_path / "sub" / "b.yaml", "base: ../a.yaml\nsize: 48\noptim:\n  lr: 0.25\n")
    top = _write(tmp_path / "sub" / "c.yaml", "base: b.yaml\namp: true\n")
    cfg = load_config(Recipe, top, ["optim.lr=0.125"])
    # a's keys, b's on top (optim merged key by key: betas kept), c's on top, then the --set
    assert (cfg.name, cfg.size, cfg.amp) == ("a", 48, True)
    assert cfg.optim.betas == [0.1, 0.2] and cfg.optim.lr == 0.125
    assert read_recipe(top) == {"name": "a", "size": 48, "amp": True, "optim": {"lr": 0.25, "betas": [0.1, 0.2]}}
    assert load_config(Recipe, tmp_path / "sub" / "b.yaml").amp is False  # a base does not see its children


def test_base_is_relative_to_the_file_not_the_working_directory(tmp_path, monkeypatch):
    _write(tmp_path / "recipes" / "base.yaml", "size: 40\n")
    top = _write(tmp_path / "recipes" / "top.yaml", "base: base.yaml\nname: top\n")
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "base.yaml", "size: 99\n")  # a decoy where a cwd-relative lookup would land
    cfg = load_config(Recipe, "recipes/top.yaml")
    assert cfg.size == 40 and cfg.name == "top"
    assert load_config(Recipe, top) == cfg


def test_base_errors_name_the_file(tmp_path):
    missing = _write(tmp_path / "m.yaml", "base: nowhere.yaml\nsize: 16\n")
    with pytest.raises(ConfigError, match=r"m\.yaml.*base recipe 'nowhere\.yaml' not found"):
        load_config(Recipe, missing)
    _write(tmp_path / "x.yaml", "base: y.yaml\n")
    _write(tmp_path / "y.yaml", "base: x.yaml\nsize: 16\n")
    with pytest.raises(ConfigError, match=r"x\.yaml.*cycle"):
        load_config(Recipe, tmp_path / "x.yaml")
    selfish = _write(tmp_path / "s.yaml", "base: s.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Recipe, selfish)
    bad = _write(tmp_path / "n.yaml", "base: 3\n")
    with pytest.raises(ConfigError, match=r"n\.yaml.*'base:' must be the path"):
        load_config(Recipe, bad)
    # an unknown key is reported with the file that holds it, even when it is the base
    _write(tmp_path / "typo.yaml", "sise: 3\n")
    child = _write(tmp_path / "child.yaml", "base: typo.yaml\nsize: 16\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*'sise'.*did you mean 'size'"):
        load_config(Recipe, child)


def test_read_model_name_follows_the_base(tmp_path):
    from hfr.config import read_model_name

    _write(tmp_path / "base.yaml", "model: drgan\n")
    top = _write(tmp_path / "top.yaml", "base: base.yaml\nbatch_size: 8\n")
    assert read_model_name(top) == "drgan"
    assert read_model_name(top, ["model=dvg"]) == "dvg"


def test_recipe_file_finds_configs_from_any_directory(tmp_path, monkeypatch):
    from hfr import config

    monkeypatch.chdir(tmp_path)
    path = config.recipe_file("drgan/synth-multipie.yaml")
    assert path.is_file() and path.is_absolute()
    with pytest.raises(ConfigError, match=r"quickstart[/\\]nope\.yaml: recipe not found"):
        config.recipe_file("quickstart/nope.yaml")
    monkeypatch.setattr(config, "CONFIGS_DIR", tmp_path / "gone" / "configs")
    with pytest.raises(ConfigError, match=r"gone[/\\]configs: the recipes folder is missing"):
        config.recipe_file("drgan/synth-multipie.yaml")
