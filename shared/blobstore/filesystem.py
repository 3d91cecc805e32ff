"""Blobs as files: ``STORAGE_PATH/blobs/sha256/<hex>``.

Writes never expose a partial blob: bytes go to a temporary file under
``STORAGE_PATH/tmp`` (same filesystem), are fsynced, and the file is renamed
into place; the directory is fsynced so the rename survives a crash. A blob
is only ever visible whole, and two writers of the same digest both end with
the same file (``os.replace`` is atomic). Upstream's filesystem backend
answered a missing blob with an empty 200; here it is absent, and the HTTP
layer answers ``BLOB_UNKNOWN``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from blobstore.port import CHUNK_SIZE
from ocimodel.digest import hex_part


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._blobs = root / "blobs" / "sha256"
        self._tmp = root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        if not digest.startswith("sha256:"):
            raise KeyError(digest)
        return self._blobs / hex_part(digest)

    def size(self, digest: str) -> int | None:
        try:
            return self.path_of(digest).stat().st_size
        except (KeyError, FileNotFoundError):
            return None

    def scratch_dir(self) -> Path:
        return self._tmp

    def put_bytes(self, digest: str, data: bytes, media_type: str) -> None:
        if self.size(digest) is not None:
            return
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        self.put_file(digest, Path(name), media_type)

    def put_file(self, digest: str, path: Path, media_type: str) -> None:
        target = self.path_of(digest)
        if target.exists():
            path.unlink(missing_ok=True)
            return
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(path, 0o644)
        os.replace(path, target)
        directory = os.open(self._blobs, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            handle = open(self.path_of(digest), "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError:
            raise KeyError(digest) from None
        return _chunks(handle, start, end)

    def redirect_url(self, digest: str) -> str | None:
        return None


def _chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    """Yield the range in chunks; the file is closed when the response is."""
    with handle:
        handle.seek(start)
        remaining = None if end is None else max(end - start, 0)
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
