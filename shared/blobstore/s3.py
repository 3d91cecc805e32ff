"""Blobs in an S3-compatible bucket: ``s3://S3_BUCKET/blobs/sha256/<hex>``.

AWS S3, MinIO, Ceph RGW, Cloudflare R2 and others speak one protocol; boto3
talks to all of them and finds credentials the standard AWS way (variables,
config and credentials files, SSO, container and instance roles): this
module never reads a key itself.

Idempotent writes
    Objects are named by their content, so a write only has to create the
    object if it is absent. A ``PutObject`` or ``CompleteMultipartUpload``
    carrying ``If-None-Match: *`` succeeds only when no object has that
    name; the loser gets ``412 Precondition Failed``, which counts as
    success (the object is there, with the same bytes by construction). It
    also makes retries safe: a write whose answer was lost is repeated, gets
    412, and is done. AWS S3 has conditional writes since August 2024, so do
    MinIO, Cloudflare R2 and recent Ceph RGW; other endpoints may refuse the
    header (``501 NotImplemented``) or ignore it. ``conditional_writes``:
    ``auto`` (default) sends it and, if the endpoint refuses it, logs once
    and writes after an existence check from then on; ``on`` sends it and
    fails on a refusal; ``off`` only checks existence (``HeadObject``).

    Without the condition a race remains: two builders that both find the
    digest absent both upload it, and the later replaces the earlier.
    Readers never notice (an S3 object appears whole, when its ``PutObject``
    or ``CompleteMultipartUpload`` ends, and both carry the same bytes), but
    it costs a second upload and, in a versioned bucket, a second version.
    An endpoint that silently ignores the header behaves the same. A ``409
    ConditionalRequestConflict`` (another conditional write of the name is in
    flight) repeats the write a few times. ``Content-Type`` is set by the
    request that creates the object.

Uploads
    Up to ``multipart_threshold`` bytes: one ``PutObject`` streamed from the
    file. Larger: an explicit multipart upload, ``part_size`` parts (S3 wants
    at least 5 MiB, at most 10,000 parts), ``max_concurrency`` in flight,
    each read with ``pread`` just before it is sent, so memory follows the
    parts in flight, not the layer (:mod:`blobstore.s3_parts`). (boto3's ``upload_file`` refuses
    ``IfNoneMatch``, so it could not make the completion conditional.) A
    failed upload is aborted; one whose process dies, or whose
    ``CreateMultipartUpload`` answer was lost, stays behind invisible: give
    the bucket a lifecycle rule aborting incomplete uploads after a day.

Retries
    botocore's ``standard`` mode (exponential backoff with jitter on
    throttling, 5xx and connection errors, a retry quota), up to
    ``DEFAULT_MAX_ATTEMPTS`` attempts, unless ``AWS_RETRY_MODE`` (e.g.
    ``adaptive``: client-side rate limiting), ``AWS_MAX_ATTEMPTS`` or the
    config file say otherwise.

Reads
    :meth:`S3BlobStore.size` is a ``HeadObject`` (sizes of immutable objects
    are cached, absence is not). :meth:`S3BlobStore.redirect_url` is a
    presigned SigV4 ``GetObject`` URL, made locally (an HMAC, no request)
    and cached per digest (:class:`blobstore.urlcache.SignedUrlCache`). A
    presigned URL dies with the credentials that signed it; botocore renews
    temporary (role) credentials 10-15 minutes before they expire, so the
    default 600 s lifetime is never cut short, longer ones can be. With a
    custom endpoint URLs are path-style (``endpoint/bucket/key``), which
    every S3-compatible server accepts.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from blobstore.s3_parts import MIB, MIN_PART_SIZE, part_size_for, send_parts
from blobstore.urlcache import SignedUrlCache
from ocimodel.digest import hex_part

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONDITIONAL_WRITES = ("auto", "on", "off")
BLOB_PREFIX = "blobs/sha256/"
#: 8 MiB parts, 4 in flight: boto3's own defaults, and 32 MiB of memory.
DEFAULT_PART_SIZE = 8 * MIB
DEFAULT_MULTIPART_THRESHOLD = 8 * MIB
DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_URL_TTL_S = 600
#: A 409 ConditionalRequestConflict means another conditional write of the
#: same name is in flight; it settles within a request's time.
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_S = 0.2
READ_CHUNK_SIZE = 1 * MIB
MAX_CACHED_SIZES = 65536
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger(__name__)


class ConditionalWritesUnsupported(Exception):
    """The endpoint refused ``If-None-Match`` and ``conditional_writes`` is ``on``."""


def object_key(digest: str) -> str:
    """``blobs/sha256/<hex>`` for a sha256 digest; ``ValueError`` otherwise."""
    if not digest.startswith("sha256:") or not _SHA256_HEX.fullmatch(hex_part(digest)):
        raise ValueError(f"not a sha256 digest: {digest[:80]!r}")
    return BLOB_PREFIX + hex_part(digest)


def make_client(
    *,
    endpoint_url: str = "",
    region: str = "",
    session: boto3.Session | None = None,
    max_pool_connections: int = 32,
) -> S3Client:
    """An S3 client from the standard AWS chain; ``endpoint_url`` (with
    path-style addressing) for S3-compatible servers, ``region`` overriding
    the chain's. Retries are botocore's (see the module docstring)."""
    if session is None:
        session = boto3.Session()
    core = session._session  # the chain's resolved settings live on the botocore session
    config = Config(
        signature_version="s3v4",  # presigned URLs would otherwise be SigV2
        retries={
            "mode": core.get_config_variable("retry_mode") or "standard",
            "max_attempts": core.get_config_variable("max_attempts") or DEFAULT_MAX_ATTEMPTS,
        },
        max_pool_connections=max_pool_connections,
        # A custom host rarely resolves bucket.host names; path-style always works.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return session.client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
    )


def _error(error: ClientError) -> tuple[int, str, str]:
    response: Any = error.response
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    details = response.get("Error", {})
    return status, str(details.get("Code", "")), str(details.get("Message", ""))


def _refuses_condition(error: ClientError) -> bool:
    """Does this error say the endpoint does not do ``If-None-Match``?"""
    status, code, message = _error(error)
    return (
        status == 501
        or code == "NotImplemented"
        or (status == 400 and "if-none-match" in message.lower())
    )


class S3BlobStore:
    """The :class:`blobstore.port.BlobStore` on an S3-compatible bucket.

    ``client_factory`` makes the boto3 client on first use (default:
    :func:`make_client` with the standard chain), so a process that never
    touches the store never resolves credentials. ``scratch`` is where
    layers are packed before upload (local disk).
    """

    def __init__(
        self,
        bucket: str,
        *,
        client_factory: Callable[[], S3Client] = make_client,
        conditional_writes: str = "auto",
        url_ttl_s: int = DEFAULT_URL_TTL_S,
        part_size: int = DEFAULT_PART_SIZE,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        scratch: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if conditional_writes not in CONDITIONAL_WRITES:
            raise ValueError(f"conditional_writes must be one of {CONDITIONAL_WRITES}")
        if part_size < MIN_PART_SIZE or max_concurrency < 1:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE}, concurrency 1")
        self.bucket = bucket
        self.conditional_writes = conditional_writes
        self._factory = client_factory
        self._client: S3Client | None = None
        self._client_lock = threading.Lock()
        # In auto mode this flips to False once the endpoint refuses a condition.
        self._conditions_work = conditional_writes != "off"
        self._url_ttl_s = url_ttl_s
        self._urls = SignedUrlCache(url_ttl_s, clock=clock)
        self._part_size = part_size
        self._threshold = max(multipart_threshold, 0)
        self._concurrency = max_concurrency
        self._scratch = scratch
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._sizes_lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        with self._client_lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    @property
    def sends_conditions(self) -> bool:
        """Whether writes currently carry ``If-None-Match: *``."""
        return self._conditions_work

    # -- metadata -----------------------------------------------------------

    def size(self, digest: str) -> int | None:
        try:
            key = object_key(digest)
        except ValueError:
            return None
        with self._sizes_lock:
            known = self._sizes.get(key)
        if known is not None:
            return known
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            # 404 only with s3:ListBucket; without it S3 says 403, which
            # must stay an error rather than pass for "absent".
            if _error(error)[0] == 404:
                return None
            raise
        self._remember_size(key, int(head["ContentLength"]))
        return int(head["ContentLength"])

    def _remember_size(self, key: str, size: int) -> None:
        with self._sizes_lock:
            self._sizes[key] = size
            self._sizes.move_to_end(key)
            while len(self._sizes) > MAX_CACHED_SIZES:
                self._sizes.popitem(last=False)

    # -- writes -------------------------------------------------------------

    def scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="nixery-s3-"))
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    def put_bytes(self, digest: str, data: bytes, media_type: str) -> None:
        key = object_key(digest)
        if self.size(digest) is None:
            self._create(lambda **condition: self._put(key, data, media_type, condition))
            self._remember_size(key, len(data))

    def put_file(self, digest: str, path: Path, media_type: str) -> None:
        key = object_key(digest)
        if self.size(digest) is None:
            size = path.stat().st_size
            if size <= self._threshold:
                with open(path, "rb") as body:
                    self._create(lambda **condition: self._put(key, body, media_type, condition))
            else:
                self._multipart(digest, key, path, size, media_type)
            self._remember_size(key, size)  # ours or a racing writer's: same digest, same size
        path.unlink(missing_ok=True)  # consumed, as the port promises

    def _put(self, key: str, body: Any, media_type: str, condition: dict[str, Any]) -> None:
        if hasattr(body, "seek"):
            body.seek(0)  # a repeat after 409 sends the file again from its start
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=media_type, **condition
        )

    def _create(self, write: Callable[..., None]) -> bool:
        """Run ``write(**condition)`` as a create-if-absent (see the module
        docstring); False when another writer had created the object."""
        conflicts = 0
        while True:
            if not self._conditions_work:
                write()  # existence was checked by the caller
                return True
            try:
                write(IfNoneMatch="*")
                return True
            except ClientError as error:
                status, code, _ = _error(error)
                if status == 412:
                    return False  # another writer created it: the same bytes
                if status == 409 and conflicts + 1 < CONFLICT_ATTEMPTS:
                    time.sleep(CONFLICT_BACKOFF_S * 2**conflicts)
                    conflicts += 1
                    continue
                if not _refuses_condition(error):
                    raise
                if self.conditional_writes == "on":
                    raise ConditionalWritesUnsupported(
                        f"the S3 endpoint refused If-None-Match ({status} {code}); set "
                        "NIXERY_S3_CONDITIONAL_WRITES=off or auto for this endpoint"
                    ) from error
                log.warning(
                    "the S3 endpoint refused a conditional write (%s %s): writing after an "
                    "existence check from now on (NIXERY_S3_CONDITIONAL_WRITES=off says so "
                    "up front)",
                    status,
                    code,
                )
                self._conditions_work = False

    def _multipart(self, digest: str, key: str, path: Path, size: int, media_type: str) -> None:
        client = self.client
        part_size = part_size_for(size, self._part_size)
        extra: dict[str, Any] = {}
        if getattr(client.meta.config, "request_checksum_calculation", "") == "when_supported":
            extra["ChecksumAlgorithm"] = "CRC32"  # as boto3's own transfer manager does
        upload_id = client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=media_type, **extra
        )["UploadId"]
        try:
            parts = send_parts(
                client,
                bucket=self.bucket,
                key=key,
                upload_id=upload_id,
                path=path,
                size=size,
                part_size=part_size,
                concurrency=self._concurrency,
            )
            created = self._create(
                lambda **condition: self._complete(digest, key, upload_id, parts, condition)
            )
        except BaseException:
            # Whatever went wrong, drop the parts (they are billed until then).
            with contextlib.suppress(ClientError):
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        if not created:  # a 412 on completion leaves the upload open
            with contextlib.suppress(ClientError):
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _complete(
        self, digest: str, key: str, upload_id: str, parts: list[Any], condition: dict[str, Any]
    ) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except ClientError as error:
            # A retried completion whose first attempt had succeeded: the
            # upload is gone because the object exists.
            if _error(error)[1] != "NoSuchUpload" or self.size(digest) is None:
                raise

    # -- reads --------------------------------------------------------------

    def read(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        size = self.size(digest)  # KeyError now, not on first iteration
        if size is None:
            raise KeyError(digest)
        stop = size if end is None else min(end, size)
        if start >= stop:
            return iter(())
        try:
            answer = self.client.get_object(
                Bucket=self.bucket, Key=object_key(digest), Range=f"bytes={start}-{stop - 1}"
            )
        except ClientError as error:
            if _error(error)[1] in ("NoSuchKey", "404"):
                raise KeyError(digest) from None
            raise
        return _stream(answer["Body"])

    def redirect_url(self, digest: str) -> str:
        key = object_key(digest)
        return self._urls.get(key, lambda: self._presign(key))

    def _presign(self, key: str) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        return self.client.generate_presigned_url("get_object", params, self._url_ttl_s)


def _stream(body: Any) -> Iterator[bytes]:
    """The response body in pieces; the connection goes back to the pool
    when the response is done."""
    try:
        yield from body.iter_chunks(READ_CHUNK_SIZE)
    finally:
        body.close()
