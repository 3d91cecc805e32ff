"""Content digests: ``algorithm ":" encoded``, as the OCI image spec defines.

The grammar accepts any registered-looking algorithm, but this registry only
ever produces and stores ``sha256``; a well-formed digest of another algorithm
is simply unknown, a malformed one is ``DIGEST_INVALID``.
"""

from __future__ import annotations

import hashlib
import re

from ocimodel.errors import ErrorCode, RegistryError

# algorithm-component (separator algorithm-component)* ":" encoded
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_SHA256_HEX = re.compile(r"[a-f0-9]{64}")
MAX_DIGEST_LENGTH = 256


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def looks_like_digest(reference: str) -> bool:
    """A manifest reference is a digest when it holds a colon (tags cannot)."""
    return ":" in reference


def parse_digest(value: str) -> str:
    """Validate ``value`` and return it; raise ``DIGEST_INVALID`` when it is
    malformed (a sha256 digest must have exactly 64 lowercase hex digits)."""
    if len(value) > MAX_DIGEST_LENGTH or not _DIGEST.fullmatch(value):
        raise RegistryError(ErrorCode.DIGEST_INVALID, "invalid digest format", detail=value[:80])
    algorithm, _, encoded = value.partition(":")
    if algorithm == "sha256" and not _SHA256_HEX.fullmatch(encoded):
        raise RegistryError(
            ErrorCode.DIGEST_INVALID,
            "a sha256 digest has 64 lowercase hex characters",
            detail=value[:80],
        )
    return value


def hex_part(digest: str) -> str:
    """The encoded part of a validated sha256 digest (for storage keys)."""
    return digest.partition(":")[2]
