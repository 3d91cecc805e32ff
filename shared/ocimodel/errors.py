"""The registry's error-code registry and its one renderer.

Every error a client can see is one of the codes of the OCI distribution
specification (plus ``UNAVAILABLE``/``UNKNOWN`` for our own failures, as
distribution/distribution has them). Each code carries its HTTP status and a
default message, so handlers raise ``RegistryError(ErrorCode.X, "...")`` and
never write an error body themselves; :func:`render` turns the exception into
the spec's envelope::

    {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "...", "detail": ...}]}

served as ``application/json``.

A note on statuses clients show. Docker, containerd and containers/image only
print a registry's message for 4xx answers; a 5xx is reported as a bare
"500 Internal Server Error". That is why a package that cannot be built is a
404 ``MANIFEST_UNKNOWN`` carrying the reason (upstream Nixery answers a bare
500 and its users never learn why), while 5xx is kept for our own faults.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any


class ErrorCode(enum.Enum):
    """A spec error code: ``(HTTP status, default message)``."""

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (404, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    UNKNOWN = (500, "unknown error")
    UNAVAILABLE = (503, "service unavailable")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def default_message(self) -> str:
        return self.value[1]


@dataclass
class RegistryError(Exception):
    """An error to answer in the spec's envelope.

    ``headers`` carries extra response headers the error needs (``Allow`` on
    405, ``Retry-After`` on 429, ``Content-Range`` on 416). ``status``
    overrides the code's status only where HTTP itself demands another one
    (416 for an unsatisfiable Range: the spec has no code of its own for it).
    """

    code: ErrorCode
    message: str = ""
    detail: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    status_override: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message or self.code.default_message)

    @property
    def status(self) -> int:
        return self.status_override or self.code.status


def render(error: RegistryError) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body answering ``error``."""
    entry: dict[str, Any] = {
        "code": error.code.name,
        "message": error.message or error.code.default_message,
    }
    if error.detail is not None:
        entry["detail"] = error.detail
    body = json.dumps({"errors": [entry]}, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **error.headers,
    }
    return error.status, headers, body
