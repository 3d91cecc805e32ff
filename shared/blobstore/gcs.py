"""Blobs in Google Cloud Storage: ``gs://GCS_BUCKET/blobs/sha256/<hex>``.

Objects are immutable and named by their content, so every write is a
*create-if-absent*: the upload carries the precondition
``ifGenerationMatch=0`` ("only if no live object has this name"). When two
builders race on one layer, or a retried request repeats a write that had in
fact succeeded, the loser gets 412 Precondition Failed, and that counts as
success: the object it wanted is there, with the same bytes by construction.
Because the precondition makes a repeat harmless, these writes use the
library's *conditional* retry (``DEFAULT_RETRY_IF_GENERATION_SPECIFIED``),
which retries transient failures only when such a precondition is set.
``Content-Type`` is set in the same request that creates the object.

Two upload paths, chosen by file size:

small (up to ``MULTIPART_LIMIT``, the client's own multipart threshold)
    One multipart request (metadata and bytes together) with the
    precondition. Configs and small layers take this path; the client reads
    the file in one piece, which is why the limit is small.
large
    A layer is never held in memory: the file (seekable, on local disk) goes
    up as a *resumable* upload in ``chunk_size`` pieces, each retried on its
    own. The Cloud Storage emulator used here (fake-gcs-server) ignores
    preconditions on resumable uploads, and a layer store must be idempotent
    wherever it runs, so the bytes go to a uniquely named temporary object
    (``tmp/<hex>.<random>``) first, which is then *copied* to the final name
    with ``ifGenerationMatch=0`` on the destination, and the temporary
    object is deleted. Real Cloud Storage does honour the precondition on a
    resumable upload (it is checked when the upload is finalised); the copy
    path is used there too, so that what runs in production is what the
    tests run. The copy stays inside one bucket, location and storage class,
    so Cloud Storage rewrites no bytes: it is a metadata operation. A
    builder that dies between upload and delete leaves a ``tmp/`` object
    behind: give the bucket a lifecycle rule deleting ``tmp/`` objects after
    a day. An unfinished resumable upload leaves nothing visible.

Either way an object is only ever visible whole, and a digest already stored
costs one metadata read instead of an upload.

Reads: :meth:`GcsBlobStore.size` is a metadata GET (``get_blob``). Objects
never change, so a size once seen is cached (bounded); absence is not, since
a blob may appear any moment. :meth:`GcsBlobStore.read` streams ranged
downloads pinned to the object's generation. :meth:`GcsBlobStore.redirect_url`
is a V4 signed GET URL, signed by a :class:`blobstore.signing.Signer` and
cached per digest (:class:`blobstore.urlcache.SignedUrlCache`). With
``STORAGE_EMULATOR_HOST`` set the client, and so every URL, points at the
emulator.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.api_core import exceptions as api_exceptions
from google.cloud.storage import Client  # type: ignore[import-untyped]
from google.cloud.storage.retry import (  # type: ignore[import-untyped]
    DEFAULT_RETRY,
    DEFAULT_RETRY_IF_GENERATION_SPECIFIED,
)

from blobstore.signing import Signer, SigningCredentials
from blobstore.urlcache import SignedUrlCache
from ocimodel.digest import hex_part

BLOB_PREFIX = "blobs/sha256/"
TMP_PREFIX = "tmp/"
#: google-cloud-storage sends files up to this size as one multipart request
#: (read into memory whole); larger ones go resumable.
MULTIPART_LIMIT = 8 * 1024 * 1024
#: Resumable chunks must be multiples of 256 KiB; 8 MiB is Google's advice
#: for throughput, and bounds the memory an upload holds.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
_CHUNK_UNIT = 256 * 1024
#: Ranged reads come back in pieces of this size.
READ_CHUNK_SIZE = 4 * 1024 * 1024
DEFAULT_URL_TTL_S = 600
MAX_CACHED_SIZES = 65536
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def object_name(digest: str) -> str:
    """``blobs/sha256/<hex>`` for a sha256 digest; ``ValueError`` otherwise."""
    if not digest.startswith("sha256:") or not _SHA256_HEX.fullmatch(hex_part(digest)):
        raise ValueError(f"not a sha256 digest: {digest[:80]!r}")
    return BLOB_PREFIX + hex_part(digest)


class GcsBlobStore:
    """The :class:`blobstore.port.BlobStore` on a Cloud Storage bucket.

    ``client`` defaults to google-cloud-storage's ``Client()`` (application default
    credentials, or the emulator with ``STORAGE_EMULATOR_HOST``). ``scratch``
    is where the builder packs layers before upload (local disk; on Cloud Run
    ``/tmp`` is memory, so point it at a mounted volume for big images).
    """

    def __init__(
        self,
        bucket: str,
        *,
        signer: Signer,
        client: Client | None = None,
        url_ttl_s: int = DEFAULT_URL_TTL_S,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        multipart_limit: int = MULTIPART_LIMIT,
        scratch: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if chunk_size <= 0 or chunk_size % _CHUNK_UNIT:
            raise ValueError(f"chunk_size must be a positive multiple of {_CHUNK_UNIT}")
        self._client = client if client is not None else Client()
        self._bucket = self._client.bucket(bucket)
        self._signer = signer
        self._url_ttl = timedelta(seconds=url_ttl_s)
        self._urls = SignedUrlCache(url_ttl_s, clock=clock)
        self._chunk_size = chunk_size
        self._multipart_limit = multipart_limit
        self._scratch = scratch
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._sizes_lock = threading.Lock()

    @property
    def bucket_name(self) -> str:
        return str(self._bucket.name)

    # -- metadata -----------------------------------------------------------

    def _get(self, name: str) -> Any:
        """The object's metadata (a ``storage.Blob``), or None when absent."""
        return self._bucket.get_blob(name, retry=DEFAULT_RETRY)

    def size(self, digest: str) -> int | None:
        try:
            name = object_name(digest)
        except ValueError:
            return None
        with self._sizes_lock:
            known = self._sizes.get(name)
        if known is not None:
            return known
        blob = self._get(name)
        if blob is None:
            return None
        self._remember_size(name, int(blob.size))
        return int(blob.size)

    def _remember_size(self, name: str, size: int) -> None:
        with self._sizes_lock:
            self._sizes[name] = size
            self._sizes.move_to_end(name)
            while len(self._sizes) > MAX_CACHED_SIZES:
                self._sizes.popitem(last=False)

    # -- writes -------------------------------------------------------------

    def scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="nixery-gcs-"))
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    def put_bytes(self, digest: str, data: bytes, media_type: str) -> None:
        name = object_name(digest)
        if len(data) > self._multipart_limit:  # only the file path is idempotent for these
            fd, path = tempfile.mkstemp(dir=self.scratch_dir(), prefix="blob-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            self.put_file(digest, Path(path), media_type)
            return
        if self.size(digest) is not None:
            return
        self._create_if_absent(
            lambda blob, **kw: blob.upload_from_string(data, **kw), name, media_type
        )
        self._remember_size(name, len(data))

    def put_file(self, digest: str, path: Path, media_type: str) -> None:
        name = object_name(digest)
        if self.size(digest) is None:
            if path.stat().st_size <= self._multipart_limit:
                self._create_if_absent(
                    lambda blob, **kw: blob.upload_from_filename(os.fspath(path), **kw),
                    name,
                    media_type,
                )
            else:
                self._upload_large(name, path, media_type)
            # Ours or a racing writer's: the same digest, so the same size.
            self._remember_size(name, path.stat().st_size)
        path.unlink(missing_ok=True)  # consumed, as the port promises

    def _create_if_absent(self, upload: Callable[..., None], name: str, media_type: str) -> None:
        # A 412 means another writer created it first: the same bytes, by their digest.
        with contextlib.suppress(api_exceptions.PreconditionFailed):
            upload(
                self._bucket.blob(name),
                content_type=media_type,
                if_generation_match=0,
                retry=DEFAULT_RETRY_IF_GENERATION_SPECIFIED,
            )

    def _upload_large(self, name: str, path: Path, media_type: str) -> None:
        temporary = self._bucket.blob(
            f"{TMP_PREFIX}{name.rsplit('/', 1)[1]}.{uuid.uuid4().hex}",
            chunk_size=self._chunk_size,
        )
        # A unique name, so a plain (unconditional) retry of a chunk is safe.
        temporary.upload_from_filename(
            os.fspath(path), content_type=media_type, retry=DEFAULT_RETRY
        )
        try:
            self._bucket.copy_blob(
                temporary,
                self._bucket,
                name,
                if_generation_match=0,
                retry=DEFAULT_RETRY_IF_GENERATION_SPECIFIED,
            )
        except api_exceptions.PreconditionFailed:
            pass  # the digest was stored meanwhile by another writer
        finally:
            # NotFound: a retried delete whose first attempt had succeeded.
            with contextlib.suppress(api_exceptions.NotFound):
                temporary.delete(retry=DEFAULT_RETRY)

    # -- reads --------------------------------------------------------------

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            name = object_name(digest)
        except ValueError:
            raise KeyError(digest) from None
        blob = self._get(name)  # raise KeyError now, not on first iteration
        if blob is None:
            raise KeyError(digest)
        return _ranges(blob, start, int(blob.size) if end is None else min(end, int(blob.size)))

    def redirect_url(self, digest: str) -> str:
        name = object_name(digest)
        return self._urls.get(name, lambda: self._sign(name))

    def _sign(self, name: str) -> str:
        url: str = self._bucket.blob(name).generate_signed_url(
            version="v4",
            method="GET",
            expiration=self._url_ttl,
            credentials=SigningCredentials(self._signer),
        )
        return url


def _ranges(blob: Any, start: int, stop: int) -> Iterator[bytes]:
    """Download ``[start, stop)`` in ``READ_CHUNK_SIZE`` pieces. ``blob``
    came from ``get_blob``, so it carries its generation and every piece is
    read from that same object version."""
    position = start
    while position < stop:
        last = min(position + READ_CHUNK_SIZE, stop) - 1  # GCS ranges are inclusive
        # No checksum: Cloud Storage only has one for the whole object.
        chunk: bytes = blob.download_as_bytes(
            start=position, end=last, checksum=None, retry=DEFAULT_RETRY
        )
        if not chunk:
            return
        yield chunk
        position += len(chunk)
