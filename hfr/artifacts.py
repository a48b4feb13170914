"""The files hfr exports, in one place: their formats, how they are written and read, their fingerprints.

Both kinds are plain dicts written atomically with `torch.save` and read with
`torch.load(..., weights_only=True)`.

**Recognizer files** (`recognizer.pt`, format `hfr-recognizer/1`; `hfr.recognizer.export` builds
and loads the network):

| key | meaning |
| --- | --- |
| `format` | `"hfr-recognizer/1"` |
| `kind` | which builder makes the network (`lightcnn`, `drgan`: an `hfr.recognizer_kinds` entry point) |
| `arch` | the architecture within the kind (`lightcnn9`, `casia-w0.25`, ...) |
| `input` | `{"size": S, "channels": C, "range": "0-1"}`: faces are (B, C, S, S) floats in [0, 1] |
| `feature_dim` | length of the feature vector |
| `state_dict` | the weights, without any classifier |
| `fingerprint` | `fingerprint(kind, arch, S, C, state_dict)` |
| `meta` | free-form provenance (recipe, step, training data), JSON types only |

**Generator files** (`generator.pt`, `identity_sampler.pt`, format `hfr-generator/1`; the method
that wrote it builds its networks through its `hfr.generator_loaders` entry point):

| key | meaning |
| --- | --- |
| `format` | `"hfr-generator/1"` |
| `method` | the task that wrote it (its `hfr.tasks` name: `drgan`, `dvg`, `dvg-sampler`, `tsgan`, ...) |
| `config` | the method's network settings (JSON types), enough to rebuild the modules |
| `modules` | `{name: state_dict}` of the networks needed at inference (no discriminators) |
| `meta` | free-form provenance, JSON types only; methods store their `fingerprint` here |

**Fingerprints**: 16 hex digits of SHA-256 over (kind, arch, size, channels) and every tensor
(name, dtype, bytes) of a state dict: the same weights give the same fingerprint whatever the
device or memory layout. Galleries store their recognizer's and refuse probes embedded by
another; a generator's identifies the weights that made a set of generated pairs.

`load_generator_file(path, method)` checks the format and, when `method` is given, that the
file is of that method: giving a DVG-Face file to `hfr rotate` names what the file is.
`load_generator(path)` builds the networks of any method's file through the loader the method
declares (`[project.entry-points."hfr.generator_loaders"] drgan = "drgan.export:load_generator"`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hfr.errors import HFRError
from hfr.fileio import atomic_open
from hfr.registry import Registry
from hfr.safeload import load_weights_only

RECOGNIZER_FORMAT = "hfr-recognizer/1"
GENERATOR_FORMAT = "hfr-generator/1"


def fingerprint(kind: str, arch: str, size: int, channels: int, state: dict[str, torch.Tensor]) -> str:
    """16 hex digits identifying an architecture, its input spec and its exact weights (module docstring)."""
    h = hashlib.sha256(f"{kind}|{arch}|{size}|{channels}".encode())
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        # reshape(-1): channels_last weights can be "contiguous" with a last stride > 1
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict's tensors detached, on the CPU, contiguous: what an exported file holds."""
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state.items()}


def save_recognizer_file(
    path: str | os.PathLike,
    kind: str,
    arch: str,
    size: int,
    channels: int,
    feature_dim: int,
    state: dict[str, torch.Tensor],
    meta: dict[str, Any] | None = None,
) -> str:
    """Write a recognizer file atomically (weights copied to the CPU); returns its fingerprint."""
    state = cpu_state(state)
    fp = fingerprint(kind, arch, int(size), int(channels), state)
    payload = {
        "format": RECOGNIZER_FORMAT,
        "kind": kind,
        "arch": arch,
        "input": {"size": int(size), "channels": int(channels), "range": "0-1"},
        "feature_dim": int(feature_dim),
        "state_dict": state,
        "fingerprint": fp,
        "meta": meta or {},
    }
    write_payload(path, payload)
    return fp


def write_payload(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """torch.save a file payload atomically, after checking that its `config` and `meta` stay
    JSON-serialisable (so the file loads with weights_only=True)."""
    json.dumps(payload.get("config", {}))
    json.dumps(payload.get("meta", {}))
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def describe_method(method: str) -> str:
    """What a generator file of `method` is, for messages: its task's `artifact_description`."""
    from hfr.engine.task import TASKS

    task = TASKS.find(method) if method else None
    described = getattr(task, "artifact_description", None)
    return str(described) if described else f"a generator of method {method!r}"


class GeneratorFileError(HFRError):
    """A generator file is missing, malformed or of another method than asked."""


#: Loads a generator file of one method into its networks: loader(path, device) -> the method's object.
GeneratorLoader = Callable[..., Any]
#: Methods -> their generator-file loader; entry-point group `hfr.generator_loaders`.
GENERATOR_LOADERS: Registry[GeneratorLoader] = Registry("generator loader", "hfr.generator_loaders", GeneratorFileError)


def save_generator_file(
    path: str | os.PathLike,
    method: str,
    config: dict[str, Any],
    modules: dict[str, dict[str, torch.Tensor]],
    meta: dict[str, Any] | None = None,
) -> None:
    """Write a generator file atomically (tensors copied to the CPU, contiguous)."""
    json.dumps(config)
    json.dumps(meta or {})
    payload = {
        "format": GENERATOR_FORMAT,
        "method": method,
        "config": config,
        "modules": {name: cpu_state(state) for name, state in modules.items()},
        "meta": meta or {},
    }
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_generator_file(path: str | os.PathLike, method: str | None = None) -> dict[str, Any]:
    """The payload of a generator file; GeneratorFileError naming the file and what is wrong.

    A folder means its `generator.pt`. With `method`, a file of another method is refused.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "generator.pt"
    payload = load_weights_only(
        p,
        "generator file",
        GeneratorFileError,
        missing_hint="train one with `hfr train-generator` (it writes generator.pt in its run folder)",
    )
    if not isinstance(payload, dict) or payload.get("format") != GENERATOR_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        hint = " (that is a recognizer file, not a generator)" if found == RECOGNIZER_FORMAT else ""
        raise GeneratorFileError(
            f"{p}: not an hfr generator file (format {found!r}, expected {GENERATOR_FORMAT!r}){hint}; "
            f"give the generator.pt of a `hfr train-generator` run"
        )
    for key in ("method", "config", "modules"):
        if key not in payload:
            raise GeneratorFileError(f"{p}: generator file without {key!r}; it is corrupt or was edited")
    if method is not None and payload["method"] != method:
        raise GeneratorFileError(
            f"{p}: this is {describe_method(str(payload['method']))}, not "
            f"{describe_method(method)}; "
            f"give a generator.pt trained with a {method} recipe"
        )
    return payload


def load_generator(path: str | os.PathLike, device: torch.device | str = "cpu") -> Any:
    """The networks of a generator file of any method, built by that method's registered loader.

    A folder means its `generator.pt`. Returns what the method's loader returns (e.g. DR-GAN's
    `LoadedGenerator`); GeneratorFileError when no installed package reads the file's method.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "generator.pt"
    method = str(load_generator_file(p)["method"])
    return GENERATOR_LOADERS.get(method, where=f"{p} ({describe_method(method)})")(p, device=device)
