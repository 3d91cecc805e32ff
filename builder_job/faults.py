"""A test hook that crashes the builder at a chosen point; inert by default.

The fault tests (``tests/faults/``) must show that a builder dying at any
moment leaves no manifest pointing at a missing blob and that the build is
taken over once its lease expires. Dying *while Nix runs* is observed and
done from outside (the Nix call log shows the realisation started; the test
kills the process group by PID). Two points have no outside sign that comes
early enough to act on, so the builder offers them itself:

``layer``
    right after the first layer blob is stored (some blobs exist, others not);
``record``
    after every blob and the config are stored, just before the image record
    is written (the last moment a crash can still lose the build).

How a test arms it: set ``NIXERY_FAULT_FILE`` in the builder's environment
to a path, and write a point's name into that file. The first builder to
reach that point renames the file (so exactly one builder fires per arming,
and a take-over build runs clean) and sends itself ``SIGKILL``: no
``finally``, no failure record, exactly like a lost machine. With the
variable unset (production) :func:`point` returns at once and
:func:`wrap_store` returns the store unchanged.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from blobstore.port import BlobStore

FAULT_FILE_VARIABLE = "NIXERY_FAULT_FILE"
POINTS = ("layer", "record")

log = logging.getLogger(__name__)


def _armed(name: str) -> Path | None:
    """The fault file when it names ``name``, else None."""
    path = os.environ.get(FAULT_FILE_VARIABLE)
    if not path:
        return None
    try:
        wanted = Path(path).read_text().strip()
    except OSError:
        return None
    return Path(path) if wanted == name else None


def point(name: str) -> None:
    """Crash here if the fault file names ``name`` (see the module doc)."""
    armed = _armed(name)
    if armed is None:
        return
    try:
        # The rename is atomic: of several builders, exactly one fires.
        armed.rename(armed.with_name(armed.name + ".fired"))
    except OSError:
        return
    log.warning("test fault hook: killing the builder at %r", name)
    os.kill(os.getpid(), signal.SIGKILL)


class _LayerFaultStore:
    """A blob store that calls :func:`point` ``("layer")`` after each layer file."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store

    def size(self, digest: str) -> int | None:
        return self._store.size(digest)

    def put_bytes(self, digest: str, data: bytes, media_type: str) -> None:
        self._store.put_bytes(digest, data, media_type)

    def put_file(self, digest: str, path: Path, media_type: str) -> None:
        self._store.put_file(digest, path, media_type)
        point("layer")

    def scratch_dir(self) -> Path:
        return self._store.scratch_dir()

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._store.read(digest, start, end)

    def redirect_url(self, digest: str) -> str | None:
        return self._store.redirect_url(digest)


def wrap_store(store: BlobStore) -> BlobStore:
    """``store`` itself, unless the hook is configured (then layer writes pass
    through :func:`point`)."""
    return _LayerFaultStore(store) if os.environ.get(FAULT_FILE_VARIABLE) else store
