"""Milvus gallery backend: the gallery operations on a Milvus collection, its folder the handle.

Needs the optional extra `milvus` (`pip install -e ".[milvus]"`: pymilvus and the embedded
milvus-lite); without it, opening or building a Milvus gallery raises `ExtraMissingError`
naming that command (the CLI prints it on one line, exit status 2). This module imports
without the extra.

What is stored where. The gallery folder stays the user's handle: it holds `meta.json`
(`"backend": "milvus"`, the Milvus URI, the collection name, the dimension, the recognizer
fingerprint, the next id to hand out, a `version` counting writes, a `build_id`, creation
and last-write times) and, by default, the milvus-lite database `milvus.db` (a folder). The
vectors and the metadata of each one live in the collection: `id` (INT64 primary key),
`vector` (FLOAT_VECTOR, L2-normalised), `subject`, `modality` and `path` (VARCHAR scalar
fields). The index is Milvus's exact `FLAT` with metric `IP`, so scores are cosine
similarities and results equal the FAISS flat gallery's on the same features (same ids in the
same order, ties aside).

URIs. Default: `FOLDER/milvus.db`, recorded as the relative `"milvus.db"` so the folder can
be moved. Another milvus-lite path (`/data/galleries.db`) is recorded absolute; a server or
cluster (`http://host:19530`, `https://...`, `tcp://...`, `unix:...`) is recorded as given.
Credentials never go into `meta.json`: a URI with a user or password is refused, and the token
is read from the environment variable `HFR_MILVUS_TOKEN` on every connection.

Ids are never reused: `add` reserves its ids by advancing `next_id` in `meta.json` (written
atomically) under the folder's writer lock (`GalleryLock`) before inserting, so concurrent
writers in any number of processes get disjoint ids, and ids of a failed insert are skipped.

Concurrency. milvus-lite serves one process at a time: opening a `.db` takes an exclusive
`flock` on its `LOCK` file, and a second process's `MilvusClient` fails ("Open local milvus
failed") while the first holds it open; pymilvus keeps the embedded server running until it
is released. So with milvus-lite every operation (reads included) holds the folder's writer
lock (and the database's own `GalleryLock` when the `.db` lives outside the folder), opens the
database, works and closes it again (a few milliseconds once the server code is imported).
`with gallery:` (or `gallery.session()`) keeps it open for a block of operations, holding the
lock meanwhile; other processes wait for it (up to `lock_timeout`, then a GalleryError naming
the holder). With a server URI the client stays connected, reads take no lock and writes hold
the folder lock only while they reserve ids and write. Writes reach Milvus as they are made
(`save` only returns the folder), and searches use Strong consistency, so a search sees every
write that has returned, in any process.

Errors are those of `hfr.gallery.Gallery`: an impossible argument is an ArgumentError; a
dimension, fingerprint, empty-gallery or folder problem, and a Milvus failure, a GalleryError
naming the folder, the URI and the collection. `k` above the gallery size (or, for
`search_subjects`, above its number of subjects) is clamped with a logged note (INFO); Milvus
returns at most `MAX_TOPK` neighbours per probe, so a larger `k` after clamping is an
ArgumentError. pymilvus and milvus-lite log every failure with a traceback before raising,
and hfr turns the failure into a GalleryError carrying its message, so their loggers
(`pymilvus`, `milvus_lite`) are set to CRITICAL and pymilvus's own stderr handlers are
removed when this module first loads pymilvus; gRPC's server log drops the tracebacks of
the methods milvus-lite does not implement (pymilvus probes one, then carries on).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import numpy as np

from hfr import __version__
from hfr.errors import ArgumentError, ExtraMissingError, GalleryError
from hfr.fileio import atomic_write_text
from hfr.gallery.index import Features, check_dim, l2_normalize
from hfr.gallery.results import GalleryEntry, SearchResult, SubjectSearchResult, distinct_subjects
from hfr.gallery.storage import (
    DEFAULT_LOCK_TIMEOUT,
    FORMAT_NAME,
    FORMAT_VERSION,
    GALLERY_FILES,
    LOCK_POLL_S,
    META_FILE,
    GalleryLock,
    parse_meta_json,
    read_meta_bytes,
)

try:
    import fcntl as _fcntl

    fcntl: Any = _fcntl
except ImportError:  # pragma: no cover - Windows: no pre-check of the milvus-lite lock
    fcntl = None

log = logging.getLogger(__name__)

__all__ = [
    "BACKEND",
    "LITE_FILE",
    "MAX_TOPK",
    "MILVUS_INSTALL",
    "TOKEN_ENV",
    "MilvusGallery",
    "is_lite_uri",
    "read_milvus_meta",
    "require_milvus",
]

#: What to run to get the Milvus backend.
MILVUS_INSTALL = 'pip install -e ".[milvus]"'
#: The value of `"backend"` in a Milvus gallery's meta.json.
BACKEND = "milvus"
#: The default milvus-lite database, inside the gallery folder.
LITE_FILE = "milvus.db"
#: The environment variable holding the token (or `user:password`) of a Milvus server.
TOKEN_ENV = "HFR_MILVUS_TOKEN"
#: Milvus's largest `limit` (topk) of a search; k above it (after clamping) is an ArgumentError.
MAX_TOPK = 16384
SCORE_TOLERANCE = 1e-3
"""How far outside [-1, 1] a score may be (float32 rounding) before the stored vectors count as corrupt."""
#: The longest subject, modality and path a Milvus gallery stores, in UTF-8 bytes (VARCHAR max_length).
MAX_BYTES = {"subjects": 1024, "modalities": 256, "paths": 8192}
INSERT_ROWS = 4096
"""Rows per insert request."""
SCAN_ROWS = 4096
"""Rows per page when listing every entry (`ids`, `subjects`, `info`)."""
SEARCH_HITS = 65536
"""Probe rows x k per search request."""
FILTER_VALUES = 1000
FILTER_CHARS = 60000
"""Values and characters per `field in [...]` filter expression."""
_VECTOR = "vector"
_SCALARS = ("subject", "modality", "path")
_FIELD_OF = {"subjects": "subject", "modalities": "modality", "paths": "path"}
_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_SERVER_SCHEMES = ("http", "https", "tcp")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ATOMIC_LEFTOVER = re.compile(rf"\.{re.escape(META_FILE)}\..*\.tmp")

_pymilvus: Any = None


def require_milvus() -> Any:
    """The `pymilvus` module, or ExtraMissingError naming `pip install -e ".[milvus]"`."""
    global _pymilvus
    if _pymilvus is None:
        try:
            import milvus_lite  # noqa: F401  (the embedded server behind .db URIs)
            import pymilvus
        except ImportError as exc:
            raise ExtraMissingError(
                f"Milvus galleries (--backend milvus) need the optional extra `milvus` (pymilvus, milvus-lite), "
                f"which is not installed ({exc}); install it with: {MILVUS_INSTALL}"
            ) from None
        for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.CRITICAL)
        logging.getLogger("grpc._server").addFilter(_unimplemented_probe)
        _pymilvus = pymilvus
    return _pymilvus


def _unimplemented_probe(record: logging.LogRecord) -> bool:
    """Drop the traceback gRPC logs when pymilvus asks the in-process milvus-lite server for a method it lacks.

    pymilvus's query iterator first asks for a timestamp (`AllocTimestamp`), which milvus-lite
    does not implement; pymilvus then uses its own clock. Other records pass.
    """
    return not (record.exc_info and isinstance(record.exc_info[1], NotImplementedError))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_lite_uri(uri: str) -> bool:
    """True for a milvus-lite database path (ends in `.db`, no scheme); False for a server URI."""
    return uri.endswith(".db") and "://" not in uri and not uri.startswith("unix:")


def _check_uri(uri: str) -> None:
    """ArgumentError unless `uri` is a milvus-lite path or a server URI without credentials."""
    if not isinstance(uri, str) or not uri:
        raise ArgumentError(f"a Milvus URI must be a non-empty string, got {uri!r}")
    if is_lite_uri(uri) or uri.startswith("unix:"):
        return
    parsed = urlparse(uri)
    if parsed.scheme.lower() not in _SERVER_SCHEMES or not parsed.netloc:
        raise ArgumentError(
            f"Milvus URI {uri!r} is neither a milvus-lite database (a path ending in .db) nor a server "
            f"(http://host:19530, https://..., tcp://..., unix:...)"
        )
    if parsed.username or parsed.password:
        raise ArgumentError(
            f"Milvus URI {uri!r} holds credentials, which would be written into the gallery's meta.json: "
            f"give the URI without them and put the token (or user:password) in ${TOKEN_ENV}"
        )


def _stored_uri(folder: Path, uri: str | None) -> str:
    """What meta.json records: "milvus.db" (inside the folder) by default, an absolute lite path, or a server URI."""
    if uri is None:
        return LITE_FILE
    _check_uri(uri)
    if not is_lite_uri(uri):
        return uri
    path = Path(uri).expanduser().resolve()
    try:
        return path.relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def _default_collection(folder: Path, stored_uri: str) -> str:
    if stored_uri == LITE_FILE:
        return "gallery"
    name = re.sub(r"[^A-Za-z0-9_]", "_", folder.name)[:200]
    return f"hfr_{name}_{uuid.uuid4().hex[:8]}"


def _literal(value: str) -> str:
    """`value` as a double-quoted string literal of a Milvus filter expression."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("\t", "\\t") + '"'


def _in_filters(field: str, values: Iterable[Any]) -> Iterator[str]:
    """`field in [...]` expressions covering `values`, each within FILTER_VALUES values and FILTER_CHARS characters."""
    chunk: list[str] = []
    size = 0
    for value in values:
        text = str(int(value)) if field == "id" else _literal(value)
        if chunk and (len(chunk) >= FILTER_VALUES or size + len(text) > FILTER_CHARS):
            yield f"{field} in [{', '.join(chunk)}]"
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 2
    if chunk:
        yield f"{field} in [{', '.join(chunk)}]"


def _check_strings(values: Sequence[str] | None, n: int, name: str, allow_empty: bool) -> list[str]:
    """One string per row (empty strings without `values`); GalleryError naming the row otherwise."""
    if values is None:
        return [""] * n
    if isinstance(values, str):
        raise GalleryError(f"{name} must be a sequence of strings, one per feature row, not one string")
    values = list(values)
    if len(values) != n:
        raise GalleryError(f"got {len(values)} {name} for {n} feature rows: give one per row")
    limit = MAX_BYTES[name]
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise GalleryError(f"{name} row {i} is {type(value).__name__}, expected a string")
        if not allow_empty and value == "":
            raise GalleryError(f"{name} row {i} is empty")
        if len(value.encode("utf-8")) > limit:
            raise GalleryError(
                f"{name} row {i} is {len(value.encode('utf-8'))} bytes long; a Milvus gallery stores at most {limit}"
            )
        if _CONTROL.search(value):
            raise GalleryError(
                f"{name} row {i} holds a control character ({value!r}); a Milvus gallery cannot store it"
            )
    return values


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_milvus_meta(folder: Path, data: bytes | None = None) -> dict[str, Any]:
    """meta.json of Milvus gallery `folder` (or its bytes `data`), checked; GalleryError naming the folder otherwise."""
    if data is None:
        if not folder.is_dir():
            raise GalleryError(
                f"gallery folder {folder} does not exist (build one with `hfr gallery build --backend milvus`)"
            )
        data = read_meta_bytes(folder)
        if data is None:
            raise GalleryError(f"gallery folder {folder}: {META_FILE} is missing; the folder is not a complete gallery")
    meta = parse_meta_json(folder, data)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise GalleryError(
            f'gallery folder {folder}: {META_FILE} is not an hfr gallery\'s meta.json (no "format": "{FORMAT_NAME}")'
        )
    if meta.get("backend") != BACKEND:
        raise GalleryError(
            f"gallery folder {folder} is a {meta.get('backend', 'faiss')} gallery, not a Milvus one: "
            f"open it with hfr.gallery.backends.open_gallery"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise GalleryError(
            f"gallery folder {folder}: {META_FILE} has format_version {meta.get('format_version')!r}; "
            f"this hfr reads version {FORMAT_VERSION}: rebuild the gallery"
        )
    for key in ("dim", "next_id", "version"):
        if not _int(meta.get(key)) or meta[key] < (1 if key == "dim" else 0):
            raise GalleryError(f"gallery folder {folder}: {META_FILE} lacks a valid {key!r} (got {meta.get(key)!r})")
    for key in ("fingerprint", "uri", "collection", "build_id"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise GalleryError(f"gallery folder {folder}: {META_FILE} lacks a valid {key!r} (got {meta.get(key)!r})")
    return meta


# -- milvus-lite servers shared within the process ------------------------------------

_LITE_USERS: Counter[str] = Counter()
_LITE_MUTEX = threading.Lock()


def _wait_for_lite(path: Path, timeout: float, folder: Path) -> None:
    """Wait until no other process holds milvus-lite database `path` open (its `LOCK` flock), up to `timeout`."""
    lock_file = path / "LOCK"
    if fcntl is None or not lock_file.exists():
        return
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        fd = os.open(lock_file, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        finally:
            os.close(fd)
        if time.monotonic() >= deadline:
            raise GalleryError(
                f"gallery folder {folder}: the milvus-lite database {path} is held open by another process "
                f"(milvus-lite serves one process at a time); gave up after waiting {timeout:g} s: close that "
                f"process's MilvusClient, or use a Milvus server (--uri http://host:19530) for concurrent use"
            )
        time.sleep(LOCK_POLL_S)


class MilvusGallery:
    """A gallery of L2-normalised face features in a Milvus collection, with the `Gallery` operations.

    Make one with `MilvusGallery.create` (empty) or `MilvusGallery.build` (create + add), open
    one with `MilvusGallery.open` (or `hfr.gallery.backends.open_gallery`). The gallery folder
    holds `meta.json` (and the default milvus-lite database); see the module docstring for what
    is stored where, ids, URIs and concurrency. `with gallery:` keeps the connection (and, for
    milvus-lite, the writer lock) for a block of operations.
    """

    def __init__(self, folder: Path, meta: dict[str, Any], lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """Prefer `create`, `build` or `open`: a gallery over the checked `meta` of `folder`."""
        self.folder = Path(folder)
        self.lock_timeout = float(lock_timeout)
        self._meta = meta
        self._client: Any = None
        self._depth = 0
        self._loaded_client: Any = None
        self._mutex = threading.RLock()
        self._blocks = threading.local()  # the `with gallery:` blocks open in each thread

    # -- properties -----------------------------------------------------------------

    @property
    def dim(self) -> int:
        """The feature dimension."""
        return int(self._meta["dim"])

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the recognizer that embedded the features."""
        return str(self._meta["fingerprint"])

    @property
    def uri(self) -> str:
        """The Milvus URI as meta.json records it ("milvus.db" = the database inside the folder)."""
        return str(self._meta["uri"])

    @property
    def collection(self) -> str:
        """The name of the Milvus collection."""
        return str(self._meta["collection"])

    @property
    def created(self) -> str:
        """When the gallery was built (UTC, ISO 8601)."""
        return str(self._meta.get("created", ""))

    @property
    def kind(self) -> str:
        """The index kind: always "flat" (Milvus FLAT, exact)."""
        return "flat"

    @property
    def is_lite(self) -> bool:
        """True when the collection lives in a milvus-lite database (one process at a time)."""
        return is_lite_uri(self.uri)

    @property
    def lite_path(self) -> Path | None:
        """The milvus-lite database folder (None for a server URI)."""
        if not self.is_lite:
            return None
        path = Path(self.uri)
        return path if path.is_absolute() else self.folder / path

    @property
    def next_id(self) -> int:
        """The id the next added vector will get (read from meta.json; ids are never reused)."""
        return int(self._read_meta()["next_id"])

    @property
    def version(self) -> int:
        """How many writes (builds, adds, removes) the gallery has had."""
        return int(self._read_meta()["version"])

    def __repr__(self) -> str:
        """A one-line summary: folder, URI, collection, dimension, fingerprint."""
        return (
            f"MilvusGallery(folder={str(self.folder)!r}, uri={self.uri!r}, collection={self.collection!r}, "
            f"dim={self.dim}, fingerprint={self.fingerprint!r})"
        )

    def _where(self) -> str:
        return f"gallery folder {self.folder} (Milvus {self.uri}, collection {self.collection})"

    def _read_meta(self) -> dict[str, Any]:
        meta = read_milvus_meta(self.folder)
        if meta["build_id"] != self._meta["build_id"]:
            raise GalleryError(
                f"gallery folder {self.folder} was rebuilt since it was opened (now collection "
                f"{meta['collection']} at {meta['uri']}): nothing was changed; open it again and repeat"
            )
        self._meta = meta
        return meta

    def _write_meta(self, meta: dict[str, Any]) -> None:
        meta = {**meta, "saved": _now()}
        atomic_write_text(self.folder / META_FILE, json.dumps(meta, indent=2) + "\n")
        self._meta = meta

    # -- connections ----------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn a pymilvus failure into a GalleryError naming the folder, URI, collection and `what`."""
        pymilvus = require_milvus()
        try:
            yield
        except pymilvus.exceptions.MilvusException as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise GalleryError(f"{self._where()}: Milvus failed to {what} ({' '.join(str(message).split())})") from exc

    def _connect(self) -> Any:
        pymilvus = require_milvus()
        lite = self.lite_path
        with self._errors("connect"):
            if lite is not None:
                key = str(lite.resolve())
                if not lite.parent.is_dir():
                    raise GalleryError(
                        f"{self._where()}: the folder of the milvus-lite database, {lite.parent}, does not exist"
                    )
                with _LITE_MUTEX:
                    if _LITE_USERS[key] == 0:
                        _wait_for_lite(lite, self.lock_timeout, self.folder)
                    try:
                        client = pymilvus.MilvusClient(uri=key)
                    except pymilvus.exceptions.MilvusException as exc:
                        if _LITE_USERS[key] == 0:
                            self._release_lite(key)
                        raise GalleryError(
                            f"{self._where()}: cannot open the milvus-lite database ({exc}); another process may "
                            f"hold it open (milvus-lite serves one process at a time)"
                        ) from exc
                    _LITE_USERS[key] += 1
                return client
            return pymilvus.MilvusClient(uri=self.uri, token=os.environ.get(TOKEN_ENV, ""))

    @staticmethod
    def _release_lite(key: str) -> None:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(key)

    def _disconnect(self) -> None:
        client, self._client, self._loaded_client = self._client, None, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.close()
        lite = self.lite_path
        if lite is not None:
            key = str(lite.resolve())
            with _LITE_MUTEX:
                _LITE_USERS[key] -= 1
                if _LITE_USERS[key] <= 0:
                    del _LITE_USERS[key]
                    self._release_lite(key)

    def _locks(self) -> list[GalleryLock]:
        """What an operation locks: milvus-lite: the folder (and the database when outside it); server: nothing."""
        lite = self.lite_path
        if lite is None:
            return []
        locks = [GalleryLock(self.folder, self.lock_timeout)]
        if lite.resolve().parent != self.folder.resolve():
            locks.append(GalleryLock(lite, self.lock_timeout))
        return locks

    @contextlib.contextmanager
    def _connected(self, write: bool = False, check: bool = True) -> Iterator[Any]:
        """The client for one operation, its collection checked and loaded unless `check` is False.

        milvus-lite: holds `_locks()` and opens the database (closed when the outermost
        operation or block ends); server: one lasting connection, and `write` holds the
        folder's writer lock.
        """
        with contextlib.ExitStack() as stack:
            if write and self.lite_path is None:
                stack.enter_context(GalleryLock(self.folder, self.lock_timeout))
            for lock in self._locks():
                stack.enter_context(lock)
            if check:
                self._read_meta()  # rebuilt since it was opened: a GalleryError, not another gallery's answers
                lite = self.lite_path
                if lite is not None and not lite.is_dir():
                    raise GalleryError(
                        f"{self._where()}: the milvus-lite database {lite} is missing; rebuild the gallery "
                        f"with hfr gallery build --backend milvus"
                    )
            with self._mutex:
                if self._client is None:
                    self._client = self._connect()
                if self.lite_path is not None:
                    self._depth += 1
                    stack.callback(self._leave)
                client = self._client
            if check and self._loaded_client is not client:
                self._load(client)
                self._loaded_client = client
            yield client

    def _leave(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth == 0:
                self._disconnect()

    def _load(self, client: Any) -> None:
        """Check the collection (exists, schema, dimension) and load it for search."""
        with self._errors("describe the collection"):
            if not client.has_collection(self.collection):
                raise GalleryError(
                    f"{self._where()}: the collection does not exist (dropped, or another database): "
                    f"rebuild the gallery with hfr gallery build --backend milvus"
                )
            described = client.describe_collection(self.collection)
        fields = {f["name"]: f for f in described.get("fields", [])}
        missing = [name for name in ("id", _VECTOR, *_SCALARS) if name not in fields]
        if missing:
            raise GalleryError(
                f"{self._where()}: the collection lacks the field(s) {', '.join(missing)}; it is not an hfr "
                f"gallery's collection: rebuild the gallery"
            )
        dim = fields[_VECTOR].get("params", {}).get("dim")
        if dim is not None and int(dim) != self.dim:
            raise GalleryError(
                f"{self._where()}: the collection's vectors have dimension {dim} but meta.json says {self.dim}; "
                f"rebuild the gallery"
            )
        with self._errors("load the collection"):
            state = client.get_load_state(self.collection).get("state")
            if getattr(state, "name", str(state)) != "Loaded":
                client.load_collection(self.collection)

    def session(self) -> MilvusGallery:
        """Use as `with gallery.session():` (or `with gallery:`): one connection for the block's operations."""
        return self

    def __enter__(self) -> MilvusGallery:
        """Connect (milvus-lite: take the lock and open the database) until the block ends."""
        stack = contextlib.ExitStack()
        stack.enter_context(self._connected())
        self._blocks.__dict__.setdefault("stacks", []).append(stack)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Close what the matching `__enter__` opened."""
        self._blocks.__dict__["stacks"].pop().close()

    def close(self) -> None:
        """Close a server connection (milvus-lite connections close after each operation or block)."""
        with self._mutex:
            if self._depth == 0:
                self._disconnect()

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        folder: str | os.PathLike,
        dim: int,
        fingerprint: str,
        uri: str | None = None,
        collection: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> MilvusGallery:
        """An empty gallery in `folder` of `dim`-dimensional features from the recognizer `fingerprint`.

        `uri`: None = the milvus-lite database `FOLDER/milvus.db`; another `.db` path; or a
        server URI (`http://host:19530`). `collection`: the collection name (default "gallery"
        in the folder's own database, else `hfr_<folder name>_<8 hex>`). An existing gallery
        folder (either backend) is replaced, under its writer lock: a folder holding other
        files is refused, its collection is dropped when it lives in the folder's database or
        at the same URI, and a collection of that name at the URI that is not the replaced
        gallery's is a GalleryError (nothing is dropped). Impossible arguments are
        ArgumentErrors; no extra installed is an ExtraMissingError.
        """
        check_dim(dim)
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ArgumentError(
                f"a gallery needs the recognizer fingerprint of its features (a non-empty string), got {fingerprint!r}"
            )
        if collection is not None and (not isinstance(collection, str) or not _COLLECTION_NAME.fullmatch(collection)):
            raise ArgumentError(
                f"Milvus collection name {collection!r} is invalid: use letters, digits and underscores "
                f"(not starting with a digit), at most 255 characters"
            )
        require_milvus()
        folder = Path(folder)
        stored = _stored_uri(folder, uri)
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "backend": BACKEND,
            "hfr_version": __version__,
            "dim": int(dim),
            "fingerprint": fingerprint,
            "uri": stored,
            "collection": collection or _default_collection(folder, stored),
            "index": {"kind": "flat", "metric": "inner_product", "milvus_index": "FLAT", "milvus_metric": "IP"},
            "next_id": 0,
            "version": 1,
            "build_id": uuid.uuid4().hex,
            "created": _now(),
        }
        folder.parent.mkdir(parents=True, exist_ok=True)
        gallery = cls(folder, meta, lock_timeout)
        with GalleryLock(folder, lock_timeout):
            old = cls._replaceable(folder)
            new_folder = not folder.exists()
            folder.mkdir(exist_ok=True)
            old_gallery = cls(folder, old, lock_timeout) if old is not None and old.get("backend") == BACKEND else None
            try:
                gallery._create_collection(old_gallery)
                gallery._write_meta(meta)
            except BaseException:
                if new_folder:  # nothing of a failed build stays behind
                    shutil.rmtree(folder, ignore_errors=True)
                raise
            for name in GALLERY_FILES:
                if name != META_FILE:
                    with contextlib.suppress(FileNotFoundError):
                        (folder / name).unlink()
            own = folder / LITE_FILE
            if gallery.lite_path != own and own.is_dir():  # the replaced gallery's database: its collection is gone
                shutil.rmtree(own, ignore_errors=True)
        log.info("created Milvus gallery %s (%s, collection %s)", folder, stored, meta["collection"])
        return gallery

    @staticmethod
    def _replaceable(folder: Path) -> dict[str, Any] | None:
        """The meta.json of the gallery a build at `folder` replaces (None if none); GalleryError for other data."""
        if not folder.exists():
            return None
        if not folder.is_dir():
            raise GalleryError(f"cannot build the gallery in {folder}: it is a file, not a folder")
        allowed = {*GALLERY_FILES, LITE_FILE}
        others = sorted(
            p.name for p in folder.iterdir() if p.name not in allowed and not _ATOMIC_LEFTOVER.fullmatch(p.name)
        )
        if others:
            raise GalleryError(
                f"cannot build the gallery in {folder}: the folder holds other files ({', '.join(others[:3])}); "
                f"choose a new or gallery folder"
            )
        data = read_meta_bytes(folder)
        if data is None:
            return None
        try:
            meta = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if isinstance(meta, dict) and meta.get("backend") == BACKEND:
            try:
                return read_milvus_meta(folder, data)
            except GalleryError:
                return None
        return meta if isinstance(meta, dict) else None

    def _place(self) -> tuple[str, str]:
        """Where the collection lives: ("lite", the database's real path) or ("server", the URI)."""
        lite = self.lite_path
        return ("lite", os.path.realpath(lite)) if lite is not None else ("server", self.uri)

    def _create_collection(self, old: MilvusGallery | None) -> None:
        """Create the collection (FLAT, IP); the caller holds the folder's writer lock.

        The replaced gallery's collection (`old`) is dropped when it lives in the folder's own
        database or at the same place as the new one; a collection of the new name in the
        folder's own database is dropped too (the folder is being replaced). Elsewhere an
        existing collection of that name is a GalleryError.
        """
        pymilvus = require_milvus()
        own = ("lite", os.path.realpath(self.folder / LITE_FILE))
        if old is not None:
            if old._place() in (own, self._place()):
                with old._connected(check=False) as client, old._errors("drop the replaced gallery's collection"):
                    if client.has_collection(old.collection):
                        client.drop_collection(old.collection)
            else:
                log.warning(
                    "gallery folder %s is rebuilt elsewhere; the previous gallery's collection %s at %s is left "
                    "in place (drop it with pymilvus if it is no longer needed)",
                    self.folder,
                    old.collection,
                    old.uri,
                )
        with self._connected(check=False) as client, self._errors("create the collection"):
            if client.has_collection(self.collection):
                if self._place() != own:
                    raise GalleryError(
                        f"{self._where()}: a collection of that name already exists there and is not the gallery "
                        f"this build replaces; choose another --collection, or drop it"
                    )
                client.drop_collection(self.collection)
            schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
            schema.add_field(_VECTOR, pymilvus.DataType.FLOAT_VECTOR, dim=self.dim)
            for name, field in _FIELD_OF.items():
                schema.add_field(field, pymilvus.DataType.VARCHAR, max_length=MAX_BYTES[name])
            index = client.prepare_index_params()
            index.add_index(field_name=_VECTOR, index_type="FLAT", metric_type="IP")
            client.create_collection(self.collection, schema=schema, index_params=index, consistency_level="Strong")

    @classmethod
    def build(
        cls,
        folder: str | os.PathLike,
        features: Features,
        subjects: Sequence[str],
        fingerprint: str,
        modalities: Sequence[str] | None = None,
        paths: Sequence[str] | None = None,
        uri: str | None = None,
        collection: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> MilvusGallery:
        """Create a gallery in `folder` sized to `features` and add them (see `create`), under the writer lock."""
        dim = int(np.shape(features)[-1])
        Path(folder).parent.mkdir(parents=True, exist_ok=True)
        with GalleryLock(Path(folder), lock_timeout):
            gallery = cls.create(folder, dim, fingerprint, uri, collection, lock_timeout)
            gallery.add(features, subjects, modalities, paths)
        return gallery

    @classmethod
    def open(cls, folder: str | os.PathLike, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> MilvusGallery:
        """Open the Milvus gallery of `folder`: read meta.json and check its collection (exists, fields, dimension).

        GalleryError naming the folder when meta.json is missing, corrupt or not a Milvus
        gallery's, or the collection is missing or differs; ExtraMissingError without the extra.
        """
        folder = Path(folder)
        meta = read_milvus_meta(folder)
        require_milvus()
        gallery = cls(folder, meta, lock_timeout)
        with gallery._connected():
            pass
        return gallery

    @classmethod
    @contextlib.contextmanager
    def open_for_update(
        cls, folder: str | os.PathLike, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> Iterator[MilvusGallery]:
        """Open the gallery under its writer lock and one connection, both held until the block ends.

        Unlike a FAISS gallery, changes are written as they are made (`save` only returns the
        folder). Another writer waits for the block (up to `lock_timeout` seconds, then a
        GalleryError naming the holder).
        """
        folder = Path(folder)
        if not folder.is_dir():
            read_milvus_meta(folder)  # the usual "does not exist" error, before creating a lock file
        with GalleryLock(folder, lock_timeout):
            gallery = cls.open(folder, lock_timeout)
            with gallery:
                yield gallery

    def save(self, folder: str | os.PathLike | None = None, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Path:
        """Return the gallery folder: a Milvus gallery's writes are stored as they are made.

        Kept so code written for `Gallery` (`add(...); save()`) works on either backend;
        another `folder` is an ArgumentError (a Milvus gallery is not copied by saving).
        """
        if folder is not None and os.path.realpath(folder) != os.path.realpath(self.folder):
            raise ArgumentError(
                f"a Milvus gallery is stored as it changes and cannot be saved to another folder ({folder}); "
                f"build a new gallery there instead"
            )
        return self.folder

    # -- reading --------------------------------------------------------------------

    def _count(self, client: Any) -> int:
        with self._errors("count the entries"):
            rows = client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def __len__(self) -> int:
        """The number of vectors in the gallery."""
        with self._connected() as client:
            return self._count(client)

    def _scan(self, client: Any, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row's `fields` (and id), a page at a time."""
        with self._errors("list the entries"):
            iterator = client.query_iterator(self.collection, batch_size=SCAN_ROWS, filter="", output_fields=fields)
            try:
                while True:
                    page = iterator.next()
                    if not page:
                        return
                    yield from page
            finally:
                iterator.close()

    def ids(self) -> np.ndarray:
        """The ids in the gallery, ascending."""
        with self._connected() as client:
            ids = np.fromiter((int(row["id"]) for row in self._scan(client, ["id"])), dtype=np.int64)
        return np.sort(ids)

    def subjects(self) -> list[str]:
        """The distinct subjects in the gallery, sorted."""
        with self._connected() as client:
            return sorted({str(row["subject"]) for row in self._scan(client, ["subject"])})

    def entry(self, gid: int) -> GalleryEntry:
        """The metadata of gallery id `gid`; GalleryError when it is not in the gallery."""
        with self._connected() as client, self._errors(f"read id {gid}"):
            rows = client.get(self.collection, ids=[int(gid)], output_fields=list(_SCALARS))
        if not rows:
            raise GalleryError(f"id {gid} is not in the gallery (removed, or never added)")
        row = rows[0]
        return GalleryEntry(int(gid), str(row["subject"]), str(row["modality"]), str(row["path"]))

    def contains_paths(self, paths: Sequence[str]) -> np.ndarray:
        """One bool per path: True when the gallery holds an entry with exactly that (non-empty) path."""
        wanted = sorted({p for p in paths if isinstance(p, str) and p and not _CONTROL.search(p)})
        held: set[str] = set()
        if wanted:
            with self._connected() as client, self._errors("look up paths"):
                for expr in _in_filters("path", wanted):
                    held.update(
                        str(row["path"]) for row in client.query(self.collection, filter=expr, output_fields=["path"])
                    )
        return np.fromiter((p in held for p in paths), dtype=bool, count=len(paths))

    def info(self) -> dict[str, Any]:
        """A summary for `hfr gallery info`: backend, URI, collection, size, subjects, modalities, index."""
        with self._connected() as client:
            count = 0
            subjects: set[str] = set()
            modalities: Counter[str] = Counter()
            for row in self._scan(client, ["subject", "modality"]):
                count += 1
                subjects.add(str(row["subject"]))
                modalities[str(row["modality"]) or "unknown"] += 1
            meta = self._read_meta()
        return {
            "folder": str(self.folder),
            "backend": BACKEND,
            "uri": self.uri,
            "collection": self.collection,
            "count": count,
            "subjects": len(subjects),
            "modalities": dict(sorted(modalities.items())),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "index": dict(meta.get("index", {})),
            "next_id": int(meta["next_id"]),
            "version": int(meta["version"]),
            "created": self.created,
            "hfr_version": __version__,
        }

    # -- add / remove ---------------------------------------------------------------

    def _check_fingerprint(self, fingerprint: str | None, what: str) -> None:
        if fingerprint is not None and fingerprint != self.fingerprint:
            raise GalleryError(
                f"{what}: probe embedded by another recognizer than the gallery's "
                f"(probe fingerprint {fingerprint!r}, gallery fingerprint "
                f"{self.fingerprint!r}); embed with the gallery's recognizer or "
                f"rebuild the gallery"
            )

    def add(
        self,
        features: Features,
        subjects: Sequence[str],
        modalities: Sequence[str] | None = None,
        paths: Sequence[str] | None = None,
        fingerprint: str | None = None,
    ) -> np.ndarray:
        """Add feature rows with their subjects (and optionally modalities, source paths); return the new ids.

        Features are L2-normalised here. The ids (int64, consecutive, never used before) are
        reserved in meta.json under the writer lock, then the rows are inserted; a failed
        insert removes what it had inserted and its ids stay unused. A `fingerprint` other
        than the gallery's is a GalleryError; so are a subject, modality or path too long or
        holding a control character (see `MAX_BYTES`).
        """
        self._check_fingerprint(fingerprint, "features to add")
        vectors = l2_normalize(features, self.dim, "features to add")
        n = vectors.shape[0]
        subjects = _check_strings(subjects, n, "subjects", allow_empty=False)
        modalities = _check_strings(modalities, n, "modalities", allow_empty=True)
        paths = _check_strings(paths, n, "paths", allow_empty=True)
        if n == 0:
            return np.zeros(0, np.int64)
        with self._connected(write=True) as client:
            meta = self._read_meta()
            start = int(meta["next_id"])
            self._write_meta({**meta, "next_id": start + n, "version": int(meta["version"]) + 1})
            new_ids = np.arange(start, start + n, dtype=np.int64)
            try:
                with self._errors(f"insert {n} entries"):
                    for at in range(0, n, INSERT_ROWS):
                        rows = [
                            {
                                "id": int(new_ids[i]),
                                _VECTOR: vectors[i],
                                "subject": subjects[i],
                                "modality": modalities[i],
                                "path": paths[i],
                            }
                            for i in range(at, min(n, at + INSERT_ROWS))
                        ]
                        client.insert(self.collection, rows)
            except BaseException:
                with contextlib.suppress(Exception):
                    client.delete(self.collection, ids=new_ids.tolist())
                raise
        return new_ids

    def remove(self, ids: Sequence[int] | None = None, subjects: Sequence[str] | None = None) -> int:
        """Remove vectors by id and/or every vector of the given subjects; return how many went.

        Ids or subjects that are not in the gallery are ignored (the count says what was
        removed). Removed ids are never handed out again. Neither ids nor subjects is an
        ArgumentError.
        """
        if ids is None and subjects is None:
            raise ArgumentError("remove needs ids or subjects (or both)")
        filters: list[str] = []
        if ids is not None:
            wanted = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
            filters += list(_in_filters("id", np.unique(wanted).tolist()))
        if subjects is not None:
            if isinstance(subjects, str):
                subjects = [subjects]
            names = sorted({s for s in subjects if isinstance(s, str) and s and not _CONTROL.search(s)})
            filters += list(_in_filters("subject", names))
        with self._connected(write=True) as client:
            found: set[int] = set()
            with self._errors("find the entries to remove"):
                for expr in filters:
                    found.update(
                        int(row["id"]) for row in client.query(self.collection, filter=expr, output_fields=["id"])
                    )
            if not found:
                return 0
            meta = self._read_meta()
            self._write_meta({**meta, "version": int(meta["version"]) + 1})
            with self._errors(f"remove {len(found)} entries"):
                for expr in _in_filters("id", sorted(found)):
                    client.delete(self.collection, filter=expr)
        return len(found)

    # -- search ---------------------------------------------------------------------

    def _check_search(self, k: int, fingerprint: str | None) -> int:
        self._check_fingerprint(fingerprint, "search")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ArgumentError(f"k must be an integer of at least 1, got {k!r}")
        return int(k)

    def _prepare_search(self, client: Any, features: Features) -> tuple[np.ndarray, int]:
        """(normalised probes, gallery size); GalleryError for an empty gallery, then for the probes' dimension."""
        count = self._count(client)
        if count == 0:
            raise GalleryError("the gallery is empty: add features before searching")
        return l2_normalize(features, self.dim, "probe features"), count

    def _clamp(self, k: int, limit: int, unit: str) -> int:
        if k > limit:
            log.info("k=%d is more than the gallery's %d %s; returning %d", k, limit, unit, limit)
            k = limit
        if k > MAX_TOPK:
            raise ArgumentError(
                f"k={k}: Milvus returns at most {MAX_TOPK} neighbours per probe; ask for fewer "
                f"(or use a FAISS gallery for deeper searches)"
            )
        return int(k)

    def _search(self, client: Any, vectors: np.ndarray, k: int, group_by: str | None = None) -> SearchResult:
        """One Milvus search of normalised `vectors` (probe batches): (Q, k) arrays, -1 / -inf / "" where missing."""
        q = vectors.shape[0]
        scores = np.full((q, k), -np.inf, np.float32)
        found = np.full((q, k), -1, np.int64)
        columns = {field: np.full((q, k), "", dtype=object) for field in _SCALARS}
        step = max(1, min(1024, SEARCH_HITS // k))
        extra = {"group_by_field": group_by} if group_by else {}
        for at in range(0, q, step):
            with self._errors("search"):
                hits = client.search(
                    self.collection,
                    data=vectors[at : at + step],
                    limit=k,
                    anns_field=_VECTOR,
                    output_fields=list(_SCALARS),
                    search_params={"metric_type": "IP"},
                    **extra,
                )
            for row, probe_hits in enumerate(hits, start=at):
                for col, hit in enumerate(list(probe_hits)[:k]):
                    scores[row, col] = float(hit["distance"])
                    found[row, col] = int(hit["id"])
                    entity = hit.get("entity", {}) or {}
                    for field in _SCALARS:
                        columns[field][row, col] = str(entity.get(field, ""))
        valid = found >= 0
        off = valid & ~(np.abs(scores) <= 1.0 + SCORE_TOLERANCE)
        if off.any():
            raise GalleryError(
                f"{self._where()}: Milvus returned a cosine similarity of {float(scores[off][0]):.4g}, outside "
                f"[-1, 1]: its stored vectors are corrupt; rebuild with hfr gallery build --backend milvus"
            )
        return SearchResult(scores, found, columns["subject"], columns["modality"], columns["path"])

    def search(self, features: Features, k: int = 5, fingerprint: str | None = None) -> SearchResult:
        """The k most similar gallery vectors of each probe row, best first (exact: Milvus FLAT, IP).

        Probe features are L2-normalised here; scores are cosine similarities. k above the
        gallery size is clamped (logged at INFO). Errors: k < 1 or k above `MAX_TOPK` after
        clamping (ArgumentError); empty gallery, dimension mismatch, another recognizer's
        `fingerprint` (GalleryError).
        """
        k = self._check_search(k, fingerprint)
        with self._connected() as client:
            vectors, count = self._prepare_search(client, features)
            return self._search(client, vectors, self._clamp(k, count, "vectors"))

    def search_subjects(self, features: Features, k: int = 5, fingerprint: str | None = None) -> SubjectSearchResult:
        """The k best distinct subjects of each probe (a subject's score is its best vector's), exact.

        Searches with a growing number of neighbours (4k, doubling, up to the gallery size)
        until every probe has k distinct subjects, as `Gallery.search_subjects` does; when
        that would need more than `MAX_TOPK` neighbours, Milvus groups by subject itself
        (`group_by_field`). k above the number of subjects is clamped (logged at INFO).
        """
        k = self._check_search(k, fingerprint)
        with self._connected() as client:
            vectors, count = self._prepare_search(client, features)
            want = min(k, count)  # a subject has at least one vector
            depth = min(count, 4 * want, MAX_TOPK)
            while True:
                result = self._search(client, vectors, depth)
                found, complete = distinct_subjects(result, want)
                exhausted = depth >= count or bool((result.ids[:, -1] < 0).all())
                if complete and not exhausted:
                    return found
                if exhausted:
                    seen = max(len({s for s in row if s}) for row in result.subjects.tolist())
                    final = self._clamp(k, max(seen, 1), "subjects")
                    return found if final == want else distinct_subjects(result, final)[0]
                if depth >= MAX_TOPK:
                    break
                depth = min(count, depth * 2, MAX_TOPK)
            if want > MAX_TOPK:
                raise ArgumentError(
                    f"k={k}: Milvus returns at most {MAX_TOPK} subjects per probe; ask for fewer "
                    f"(or use a FAISS gallery for deeper searches)"
                )
            grouped = self._search(client, vectors, want, group_by="subject")
            seen = int((grouped.ids >= 0).sum(axis=1).max())
            final = self._clamp(k, seen, "subjects") if seen < want else want
            return distinct_subjects(grouped, final)[0]
