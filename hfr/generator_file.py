"""Generator files: one `generator.pt` per trained generator, shared by DR-GAN, DVG-Face, TSGAN.

A plain dict, loadable with `torch.load(..., weights_only=True)`:

| key | meaning |
| --- | --- |
| `format` | `"hfr-generator/1"` |
| `method` | which package reads it: `drgan`, `dvg`, `tsgan` |
| `config` | the method's network settings (JSON types), enough to rebuild the modules |
| `modules` | `{name: state_dict}` of the networks needed at inference (no discriminators) |
| `meta` | free-form provenance (recipe, step, training data), JSON types only |

`load_generator_file(path, method)` checks the format and, when `method` is given, that the
file is of that method: giving a DVG-Face file to `hfr rotate` names what the file is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from hfr.errors import HFRError
from hfr.fileio import atomic_open
from hfr.safeload import load_weights_only

FORMAT = "hfr-generator/1"

#: What each method's generator does, for error messages.
METHOD_NAMES = {"drgan": "a DR-GAN pose-rotation generator",
                "dvg": "a DVG-Face NIR-VIS pair generator",
                "dvg-sampler": "a DVG-Face identity sampler (F_s)",
                "tsgan": "a TSGAN de-occlusion/frontalization generator"}


class GeneratorFileError(HFRError):
    """A generator file is missing, malformed or of another method than asked."""


def save_generator_file(path: str | os.PathLike, method: str, config: dict[str, Any],
                        modules: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any] | None = None) -> None:
    """Write a generator file atomically (tensors copied to the CPU, contiguous)."""
    json.dumps(config)
    json.dumps(meta or {})
    payload = {"format": FORMAT, "method": method, "config": config,
               "modules": {name: {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                                  for k, v in state.items()} for name, state in modules.items()},
               "meta": meta or {}}
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_generator_file(path: str | os.PathLike, method: str | None = None) -> dict[str, Any]:
    """The payload of a generator file; GeneratorFileError naming the file and what is wrong.

    A folder means its `generator.pt`. With `method`, a file of another method is refused.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "generator.pt"
    payload = load_weights_only(p, "generator file", GeneratorFileError,
                                missing_hint="train one with `hfr train-generator` (it writes generator.pt "
                                             "in its run folder)")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        hint = " (that is a recognizer file, not a generator)" if found == "hfr-recognizer/1" else ""
        raise GeneratorFileError(f"{p}: not an hfr generator file (format {found!r}, expected {FORMAT!r}){hint}; "
                                 f"give the generator.pt of a `hfr train-generator` run")
    for key in ("method", "config", "modules"):
        if key not in payload:
            raise GeneratorFileError(f"{p}: generator file without {key!r}; it is corrupt or was edited")
    if method is not None and payload["method"] != method:
        what = METHOD_NAMES.get(payload["method"], f"a generator of method {payload['method']!r}")
        raise GeneratorFileError(f"{p}: this is {what}, not {METHOD_NAMES.get(method, method)}; "
                                 f"give a generator.pt trained with a {method} recipe")
    return payload
