"""The blob function's logic: ``/v2/<name>/blobs/<digest>``.

Blobs are content-addressed and shared by every image, so the name is only
checked for validity. HEAD answers the size and digest without a redirect.
GET answers a 307 to a short-lived URL where the store offers one (object
stores: the bytes never pass through the function), or streams the bytes
with ``Content-Length`` and single-range support (the embedded store). A
missing blob is ``BLOB_UNKNOWN``, a malformed digest ``DIGEST_INVALID``.
"""

from __future__ import annotations

import re

from werkzeug.wrappers import Request, Response

from blobstore.port import BlobStore
from nixspec.names import validate_name
from ocimodel.digest import parse_digest
from ocimodel.errors import ErrorCode, RegistryError
from registry.http import not_found, require_read
from registry.routes import Kind, parse
from registry.settings import Settings

# ASCII digits only (``\d`` also matches other scripts' digits) and at most
# 18 of them: a longer number cannot be a position in a blob, and ``int`` of
# over 4300 digits raised (a 500). Such a header is ignored like any other
# malformed one.
_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")
IMMUTABLE = "public, max-age=31536000, immutable"


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end exclusive)`` for a single satisfiable byte range; None
    to ignore the header (absent, malformed or multi-range: RFC 9110 lets a
    server answer those with the whole blob). Raises 416 when unsatisfiable."""
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        ErrorCode.SIZE_INVALID,
        f"requested range not satisfiable: the blob is {size} bytes",
        headers={"Content-Range": f"bytes */{size}"},
        status_override=416,
    )


class BlobService:
    def __init__(self, settings: Settings, store: BlobStore) -> None:
        self.settings = settings
        self.store = store

    def handle(self, request: Request) -> Response:
        route = parse(request.path)
        if route.kind is Kind.UPLOAD:
            validate_name(route.name, self.settings.max_name_length)
            require_read(request)  # every upload method is a write: 405 with Allow
            # A read of an upload session: there are none (the spec's answer).
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, "this registry takes no uploads")
        if route.kind is not Kind.BLOB:
            raise not_found(request.path)
        validate_name(route.name, self.settings.max_name_length)
        require_read(request)
        digest = parse_digest(route.reference)
        if not digest.startswith("sha256:"):
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, f"no blob {digest}: only sha256 is stored")
        size = self.store.size(digest)
        if size is None:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, f"no blob {digest}")
        headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"'}
        if request.method == "HEAD":
            headers.update(
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(size),
                    "Accept-Ranges": "bytes",
                    "Cache-Control": IMMUTABLE,
                }
            )
            return Response(status=200, headers=headers)
        url = self.store.redirect_url(digest)
        if url is not None:
            headers["Location"] = url
            return Response(status=307, headers=headers)
        return self._stream(request, digest, size, headers)

    def _stream(
        self, request: Request, digest: str, size: int, headers: dict[str, str]
    ) -> Response:
        status, start, end = 200, 0, size
        wanted = (
            parse_range(request.headers.get("Range", ""), size)
            if "Range" in request.headers
            else None
        )
        if wanted is not None:
            start, end = wanted
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        try:
            body = self.store.read(digest, start, end)
        except KeyError:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, f"no blob {digest}") from None
        headers.update(
            {
                "Content-Type": "application/octet-stream",
                "Content-Length": str(end - start),
                "Accept-Ranges": "bytes",
                "Cache-Control": IMMUTABLE,
            }
        )
        return Response(body, status=status, headers=headers, direct_passthrough=True)
