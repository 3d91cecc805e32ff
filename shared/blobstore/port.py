"""The blob store port: content-addressed bytes, whatever holds them.

Blobs (layers, configs) are immutable and named by their sha256 digest, so a
write is idempotent: writing a digest that is already there is a no-op, and
two builders racing on the same layer both succeed with the same bytes.
Adapters, one module each: :mod:`blobstore.filesystem` (embedded default),
:mod:`blobstore.gcs`, :mod:`blobstore.s3`.

Layers reach the store as files: the builder packs each layer into a local
temporary file (computing both digests while streaming, memory flat in layer
size), then hands the file over. For the filesystem store that hand-over is a
rename; for object stores it is a resumable, retryable upload of a seekable
file.

Reading is either a redirect (object stores answer with a short-lived signed
URL so bytes never pass through the function) or a stream (the embedded
server), decided by :meth:`BlobStore.redirect_url` returning ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK_SIZE = 1024 * 1024


class BlobStore(Protocol):
    def size(self, digest: str) -> int | None:
        """The blob's size in bytes, or ``None`` when it is not stored."""
        ...

    def put_bytes(self, digest: str, data: bytes, media_type: str) -> None:
        """Store small bytes (configs) under ``digest``; idempotent."""
        ...

    def put_file(self, digest: str, path: Path, media_type: str) -> None:
        """Store the file at ``path`` under ``digest`` and consume the file
        (moved or deleted); idempotent."""
        ...

    def scratch_dir(self) -> Path:
        """A local directory where files for :meth:`put_file` are cheapest to
        create (the same filesystem as the store, where there is one)."""
        ...

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` up to ``end`` (exclusive; ``None`` = to the end).
        Raises ``KeyError`` when the blob is not stored."""
        ...

    def redirect_url(self, digest: str) -> str | None:
        """A URL clients can fetch the blob from directly, or ``None`` when
        this store streams blobs through the server."""
        ...
