"""Loading PyTorch files safely: `torch.load(..., weights_only=True)` with errors that say why.

Every model, checkpoint and recognizer file in hfr goes through `load_weights_only`: a file
that needs pickle (it holds Python objects other than tensors, numbers, strings and plain
containers) is refused, never loaded unsafely.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from hfr.errors import HFRError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _detail(exc: BaseException) -> str:
    """The informative line of torch's weights-only error (it opens with boilerplate)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("Unsupported", "Trying to", "invalid load key")) or "GLOBAL" in ln:
            return ln
    return lines[0] if lines else type(exc).__name__


def load_weights_only(
    path: str | os.PathLike,
    what: str = "checkpoint",
    error: type[HFRError] = HFRError,
    map_location: Any = "cpu",
    missing_hint: str = "check the path",
) -> Any:
    """`torch.load(path, map_location, weights_only=True)`; `error` naming the file otherwise.

    `what` names the kind of file in messages ("checkpoint", "recognizer file", ...).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: {what} not found; {missing_hint}")
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # not a pickled object: a corrupt or foreign file
            raise error(
                f"{p}: not a readable {what} ({_detail(exc)}); it may be truncated or of another format"
            ) from None
        raise error(
            f"{p}: refused: this {what} needs pickle to load (it holds Python objects other than "
            f"tensors, numbers, strings and plain containers: {_detail(exc)}); hfr loads "
            f"weights only, so re-save it with plain types (state dicts of tensors) from a "
            f"trusted environment"
        ) from None
    except Exception as exc:  # torch raises many types for foreign or truncated files
        raise error(
            f"{p}: not a readable {what} ({type(exc).__name__}: {_first_line(exc)}); it may be "
            f"truncated or of another format"
        ) from None
