"""Dataclass configs: YAML files under `configs/`, `--set a.b=value` overrides, validation.

A config is a tree of dataclasses whose fields have plain types (bool, int, float, str,
`X | None`, `list[X]`, `dict[str, X]`, nested dataclasses). `load_config(cls, path, sets)`
builds one from defaults, then a YAML file, then the overrides, in that order:

    cfg = load_config(SynthConfig, "configs/data/synth-multipie.yaml", ["subjects=20"])

Every value is checked against its field's type; an unknown key is a ConfigError that
names the key, the file or override it came from, and the closest valid key. The
resolved config is saved beside every output with `save_config` (atomically).

A recipe can inherit another with a `base:` key (a path relative to the recipe's own
folder; the base may itself have a base):

    # configs/drgan/synth-multipie-multi.yaml
    base: synth-multipie.yaml
    net:
      multi_image: 4

The chain is merged from the first base on: each file's keys go on top of what its base
gave (nested mappings key by key, other values replaced), then the `--set`s. `read_recipe`
returns the merged mapping; a missing base or a cycle is a ConfigError naming the file.
`recipe_file` finds the recipes under `configs/` from any working directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard, TypeVar, Union

import yaml

from hfr.errors import ConfigError
from hfr.fileio import atomic_write_text

T = TypeVar("T")

_NONE_WORDS = ("none", "null", "~", "")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _closest(key: str, options: Iterable[str]) -> str:
    matches = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def is_dataclass_type(tp: Any) -> TypeGuard[type[Any]]:
    """True when `tp` is a dataclass (the class, not an instance)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def field_names(cls: type) -> list[str]:
    """Dotted names of every leaf field of a config dataclass (for suggestions and docs)."""
    names: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if is_dataclass_type(tp):
            names.extend(f"{f.name}.{sub}" for sub in field_names(tp))
        else:
            names.append(f.name)
    return names


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert a YAML value to type `tp`; raise ConfigError naming `where`."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} is not a valid {_type_name(tp)}")
    if is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, val_tp = typing.get_args(tp) or (str, Any)
        return {str(k): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value.strip())
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)  # YAML 1.1 reads "2e-4" as a string
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a mapping, checking keys and types (missing keys keep defaults)."""
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(typing.cast(Any, cls))}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r}{_closest(str(key), known)} (valid keys: {', '.join(known)})"
            )
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    try:
        cfg = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    check = getattr(cfg, "validate", None)
    if callable(check):
        check()
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a plain dict (tuples become lists) ready for YAML."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def to_yaml(cfg: Any) -> str:
    """A config dataclass as YAML text, keys in field order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)


def _leaf_type(cls: type, dotted: str, source: str) -> Any:
    """The type of the field named by `dotted` ("a.b.c") in config class `cls`."""
    tp: Any = cls
    walked = []
    for part in dotted.split("."):
        inner = _unwrap_optional(tp)
        if not dataclasses.is_dataclass(inner):
            if typing.get_origin(inner) is dict:
                tp = typing.get_args(inner)[1] if typing.get_args(inner) else Any
                walked.append(part)
                continue
            raise ConfigError(f"{source}: {'.'.join(walked)!r} is not a section; it has no key {part!r}")
        hints = typing.get_type_hints(inner)
        if part not in hints:
            prefix = ".".join(walked)
            options = [n for n in field_names(cls) if n.startswith(prefix + ".")] if prefix else field_names(cls)
            full = ".".join(walked + [part])
            raise ConfigError(f"{source}: unknown key {full!r}{_closest(full, options)}")
        tp = hints[part]
        walked.append(part)
    return tp


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def parse_value(text: str, tp: Any, where: str) -> Any:
    """Parse the text of a `--set` value for a field of type `tp` (YAML syntax, then type-checked)."""
    inner = _unwrap_optional(tp)
    if text.strip().lower() in _NONE_WORDS and inner is not tp:
        return None
    if inner is str:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: cannot parse {text!r} ({exc})") from None
    if typing.get_origin(inner) in (list, tuple) and not isinstance(value, list):
        value = [value] if "," not in text else [yaml.safe_load(t) for t in text.split(",")]
    return _coerce(value, tp, where)


def apply_overrides(cls: type, data: dict[str, Any], sets: Iterable[str]) -> dict[str, Any]:
    """Apply `key.sub=value` overrides to the nested dict `data` (typed by config class `cls`)."""
    for item in sets:
        source = f"--set {item}"
        if "=" not in item:
            raise ConfigError(f"{source}: expected KEY=VALUE, e.g. --set size=64")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"{source}: empty key; expected KEY=VALUE")
        tp = _leaf_type(cls, key, source)
        value = parse_value(text, tp, source)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = to_dict(value) if dataclasses.is_dataclass(value) else value
    return data


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping from `path`; ConfigError naming the file when missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found; see configs/ for the recipes")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


#: The key of a recipe that names the recipe it inherits (`base: synth-multipie.yaml`).
BASE_KEY = "base"


def recipe_chain(path: str | os.PathLike) -> list[tuple[Path, dict[str, Any]]]:
    """The files a recipe is built from, first base first: [(file, its own keys without `base:`), ...].

    `base:` is a path relative to the folder of the file that names it (or absolute). A base
    that does not exist, a `base:` that is not a path and a cycle are ConfigErrors naming the file.
    """
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    current = Path(path)
    while True:
        resolved = current.resolve()
        if resolved in seen:
            cycle = " -> ".join(str(p) for p in [*seen[seen.index(resolved) :], resolved])
            raise ConfigError(f"{current}: recipe inheritance cycle ({cycle}); remove one of these 'base:' keys")
        seen.append(resolved)
        data = dict(read_yaml(current))
        base = data.pop(BASE_KEY, None)
        chain.append((current, data))
        if base is None:
            break
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(
                f"{current}: 'base:' must be the path of another recipe (relative to this file's folder), got {base!r}"
            )
        parent = current.parent / base
        if not parent.is_file():
            raise ConfigError(
                f"{current}: base recipe {base!r} not found (looked for {parent}); "
                f"'base:' is relative to the folder of the file that names it"
            )
        current = parent
    return chain[::-1]


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """A recipe YAML as one mapping: its `base:` chain merged (see the module docstring), no `base:` key."""
    data: dict[str, Any] = {}
    for _, layer in recipe_chain(path):
        data = _merge(data, layer)
    return data


def load_config(
    cls: type[T], path: str | os.PathLike | None = None, sets: Iterable[str] = (), base: Mapping[str, Any] | None = None
) -> T:
    """Defaults <- `base` mapping <- recipe `path` (its `base:` chain first) <- `--set` overrides, then type-check.

    Errors name the file (or override) and key.
    """
    data: dict[str, Any] = dict(to_dict(cls()))
    if base:
        data = _merge(data, dict(base))
    where = "config"
    if path is not None:
        for layer_path, layer in recipe_chain(path):
            _check_keys(cls, layer, str(layer_path))
            data = _merge(data, layer)
        where = str(path)
    data = apply_overrides(cls, data, sets)
    return from_dict(cls, data, where)


def _check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {key!r}{_closest(str(key), hints)}")
        inner = _unwrap_optional(hints[key])
        if is_dataclass_type(inner) and isinstance(value, Mapping):
            _check_keys(inner, value, f"{where}: {key}")


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML to `path` atomically; returns the path."""
    p = Path(path)
    atomic_write_text(p, to_yaml(cfg))
    return p


def read_model_name(path: str | os.PathLike, sets: Iterable[str] = (), default: str | None = None) -> str:
    """The `model:` of a recipe (a `--set model=...` wins); when absent, `default`, else a ConfigError naming it."""
    for item in sets:
        key, sep, value = str(item).partition("=")
        if sep and key.strip() == "model":
            return value.strip()
    data = read_recipe(path)
    name = data.get("model") if isinstance(data, Mapping) else None
    if (not isinstance(name, str) or not name) and default is not None:
        return default
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: no 'model:' key; a generator recipe names its method, e.g. 'model: drgan'")
    return name


#: Where the recipes are: `configs/` beside the `hfr` package's source (a checkout, an editable install).
CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


def configs_dir() -> Path:
    """The `configs/` folder of the recipes (`CONFIGS_DIR`), from any working directory; ConfigError naming
    the expected path when it is not there."""
    folder = CONFIGS_DIR
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: the recipes folder is missing; hfr looks for configs/ beside its package "
            f"source (install from a checkout with `pip install -e .`)"
        )
    return folder


def recipe_file(name: str | os.PathLike) -> Path:
    """The recipe `configs/<name>` (e.g. "quickstart/drgan.yaml"); ConfigError naming the expected path."""
    path = configs_dir() / name
    if not path.is_file():
        raise ConfigError(
            f"{path}: recipe not found; the recipes under {configs_dir()} are part of the "
            f"checkout (restore the file with git)"
        )
    return path
