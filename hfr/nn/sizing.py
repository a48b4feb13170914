"""Sizes, widths and option checks shared by the generative models (DR-GAN, DVG-Face, TSGAN).

- `scaled(channels, width)`: the CPU-sized models multiply every channel count (and MLP hidden
  width) by `width`; each result is rounded and kept at 4 or more.
- `check_size`: an image size a network can take (a positive multiple of 2^k for k stride-2
  stages, or a power of two down to a fixed bottleneck), else a ConfigError saying which sizes work.
- `check_width`, `check_choice`: a width multiplier > 0 and a value from a fixed set of choices
  (norm kinds, loss kinds, priors), else a ConfigError naming the setting and the choices.
- `count_parameters`: the number of parameters of a module (the models' docstrings quote them).

Every error is a `hfr.errors.ConfigError`: these values come from a config's `net:` or `loss:`
section (or from the config stored in a generator file), and the message names what to change.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import SupportsIndex

from torch import nn

from hfr.errors import ConfigError

#: The smallest channel count `scaled` gives.
MIN_CHANNELS = 4


def scaled(channels: int, width: float) -> int:
    """A channel count (or hidden width) times `width`, rounded, at least `MIN_CHANNELS`."""
    return max(MIN_CHANNELS, int(round(channels * width)))


def _as_int(value: object) -> int | None:
    """`value` as an int when it is an integer (Python or numpy), else None (floats, strings, ...)."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def check_size(
    size: SupportsIndex, what: str, *, multiple: int = 1, minimum: int = 1, power_of_two: bool = False, why: str = ""
) -> int:
    """`size` if it is an integer >= `minimum`, a multiple of `multiple` and (if asked) a power of two.

    `what` names the setting (e.g. "DR-GAN image size"), `why` (optional) says in a few words
    why the rule holds or which sizes are usual; both go into the ConfigError raised otherwise,
    e.g. "TSGAN image size must be a power of two >= 32 (64 for the CPU recipes), got 96".
    """
    n = None if isinstance(size, bool) else _as_int(size)
    ok = n is not None and n >= minimum and n % multiple == 0 and (not power_of_two or n & (n - 1) == 0)
    if n is None or not ok:
        if power_of_two:
            rule = f"a power of two >= {minimum}"
        elif multiple > 1:
            rule = f"a multiple of {multiple}" + (f" >= {minimum}" if minimum > multiple else "")
        else:
            rule = f"an integer >= {minimum}"
        raise ConfigError(f"{what} must be {rule}{f' ({why})' if why else ''}, got {size!r}")
    return n


def check_width(width: float, what: str = "width") -> float:
    """`width` if it is > 0, else a ConfigError naming `what` (1.0 gives the papers' channel counts)."""
    if not width > 0:
        raise ConfigError(f"{what} must be > 0 (1.0 = the paper's widths), got {width}")
    return width


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """`value` if it is one of `choices`, else a ConfigError naming `what` and listing the choices."""
    if value not in choices:
        raise ConfigError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
    return value


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of `module`."""
    return sum(p.numel() for p in module.parameters())
