"""Named registries that methods plug into: one behaviour for tasks, recognizer kinds, generator readers.

A `Registry` maps names to objects (task classes, network builders, file readers). It is filled
two ways, which behave alike:

- **entry points** (how packages plug in): `pyproject.toml` declares
  `[project.entry-points."hfr.tasks"] drgan = "drgan.task:DRGANTask"`; the registry loads an
  entry point the first time its name is asked for (`get`), or all of them for `names()`.
  Nothing is registered as a side effect of importing a module.
- **`register(name, obj)`** (or the `registry.register_as(name)` decorator): for objects built at
  run time, tests and scripts; `temporarily(name, obj)` registers for a `with` block.

Both refuse a second, different object under a taken name (registering the same object twice is
a no-op), and asking for an unknown name raises the registry's error type with the closest
registered name as a suggestion. An entry point that fails to import is logged and left out of
`names()`; asking for it by name raises the registry's error with the import failure in it.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from hfr.errors import HFRError

log = logging.getLogger(__name__)

T = TypeVar("T")
F = TypeVar("F")


def qualified_name(obj: Any) -> str:
    """`module.qualname` of a class or function (repr for anything else), for messages."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(Generic[T]):
    """Names -> objects, filled from an entry-point group and by `register` (module docstring).

    Args:
        what: what the entries are, for messages ("task", "recognizer kind").
        group: the entry-point group (`hfr.tasks`), or None for a registry filled by code only.
        error: the HFRError subclass raised for an unknown name.
        key: what the name is called where users write it ("model:" in a recipe), for messages.
    """

    def __init__(self, what: str, group: str | None, error: type[HFRError] = HFRError, key: str | None = None) -> None:
        self.what, self.group, self.error, self.key = what, group, error, key
        self._entries: dict[str, T] = {}
        self._failed: dict[str, str] = {}

    # ------------------------------------------------------------------ filling
    def register(self, name: str, obj: T) -> T:
        """Register `obj` under `name`; ValueError when the name holds another object."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a {self.what} needs a non-empty name, got {name!r}")
        previous = self._entries.get(name)
        if previous is not None and previous is not obj and qualified_name(previous) != qualified_name(obj):
            raise ValueError(
                f"{self.what} name {name!r} is already registered to {qualified_name(previous)}; "
                f"choose another name for {qualified_name(obj)}"
            )
        self._entries[name] = obj
        self._failed.pop(name, None)
        return obj

    def register_as(self, name: str) -> Callable[[F], F]:
        """Decorator form of `register` for classes and functions."""

        def decorate(obj: F) -> F:
            self.register(name, obj)  # type: ignore[arg-type]
            return obj

        return decorate

    def unregister(self, name: str) -> None:
        """Forget `name` (a no-op when it is not registered); an entry point of that name loads again when asked."""
        self._entries.pop(name, None)
        self._failed.pop(name, None)

    @contextlib.contextmanager
    def temporarily(self, name: str, obj: T) -> Iterator[None]:
        """Register `obj` as `name` for a `with` block, replacing and then restoring any entry."""
        previous = self._entries.get(name)
        self._entries[name] = obj
        try:
            yield
        finally:
            if previous is None:
                self._entries.pop(name, None)
            else:
                self._entries[name] = previous

    # ------------------------------------------------------------------ entry points
    def _entry_points(self) -> list[metadata.EntryPoint]:
        if self.group is None:
            return []
        return list(metadata.entry_points(group=self.group))

    def _load(self, ep: metadata.EntryPoint) -> None:
        try:
            obj = ep.load()
        except Exception as exc:  # an optional plug-in must not break the others: report it, go on
            reason = f"{type(exc).__name__}: {exc}"
            if ep.name not in self._failed:
                log.warning("%s entry point %s = %s could not be loaded: %s", self.group, ep.name, ep.value, reason)
            self._failed[ep.name] = f"entry point {ep.value} could not be loaded ({reason})"
            return
        self.register(ep.name, obj)

    def load_all(self) -> None:
        """Load every entry point of the group that is not registered yet."""
        for ep in self._entry_points():
            if ep.name not in self._entries:
                self._load(ep)

    # ------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        """Every usable name (entry points loaded), sorted."""
        self.load_all()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if name in self._entries:
            return True
        return isinstance(name, str) and self.find(name) is not None

    def find(self, name: str) -> T | None:
        """The entry named `name`, loading its entry point when needed; None when there is none."""
        if name not in self._entries:
            for ep in self._entry_points():
                if ep.name == name:
                    self._load(ep)
                    break
        return self._entries.get(name)

    def get(self, name: str, where: str | None = None) -> T:
        """The entry named `name`; otherwise the registry's error, which names the closest registered name.

        `where` starts the message (a file, a key); default: the registry's `key`, else what it holds.
        """
        found = self.find(name)
        if found is not None:
            return found
        prefix = where or self.key or self.what
        if name in self._failed:
            raise self.error(
                f"{prefix}: {self.what} {name!r} is installed but its {self._failed[name]}; "
                f"fix or reinstall the package that provides it"
            )
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(repr(n) for n in names) or "none"
        raise self.error(f"{prefix}: unknown {self.what} {name!r}{hint} (registered: {listing})")
