"""Atomic file writes: write a temporary file beside the target, fsync, then `os.replace`.

A reader never sees a half-written checkpoint, gallery, manifest or config, and an
interrupted write leaves the previous file intact. A write that fails because the disk is
full, a quota is used up, permission is missing or the file system is read-only raises a
`WriteError` naming the target (never the temporary file) and saying what to do; the
temporary file is removed. A process killed mid-write leaves its temporary file
(`.<name>.<random>.tmp`) behind: `remove_stale_temporaries` clears them on the next start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hfr.errors import WriteError

log = logging.getLogger(__name__)

#: OS errors that mean "this cannot be written here", with what to tell the user.
WRITE_FAILURES = {
    errno.ENOSPC: ("the disk is full", "free some space"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or raise the quota"),
    errno.EACCES: ("permission denied", "write somewhere you may write, or fix the folder's permissions"),
    errno.EPERM: ("operation not permitted", "write somewhere you may write, or fix the folder's permissions"),
    errno.EROFS: ("the file system is read-only", "write to another folder"),
}


def write_error(path: str | os.PathLike, exc: OSError) -> WriteError | None:
    """A WriteError naming `path` for an OSError that means it cannot be written there, else None."""
    found = WRITE_FAILURES.get(exc.errno or -1)
    if found is None:
        return None
    what, todo = found
    return WriteError(
        f"{path}: cannot write it ({what}); {todo} and run the command again (any previous "
        f"version of the file is unchanged)"
    )


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO]:
    """Open a temporary file next to `path` for writing; on success it replaces `path`.

    `mode` is "w" (text) or "wb" (binary). On an exception the temporary file is removed
    and `path` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise write_error(target, exc) or exc from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        failure = write_error(target, exc) if isinstance(exc, OSError) else None
        if failure is not None:
            raise failure from None
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files `atomic_open` left in `folder` when a process died mid-write.

    Call it only where no other process is writing (a run folder at the start of training).
    Returns what was removed (logged too).
    """
    removed: list[Path] = []
    base = Path(folder)
    if not base.is_dir():
        return removed
    for p in base.glob(".*.tmp"):
        if p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    if removed:
        log.info(
            "removed %d temporary file(s) an interrupted write left in %s: %s",
            len(removed),
            base,
            ", ".join(p.name for p in removed),
        )
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
