"""Media types and ``Accept`` negotiation for manifests.

Every image is stored in two equivalent manifests that share their blobs: a
Docker schema 2 manifest (the default: every client reads it) and an OCI image
manifest. :func:`negotiate` picks one for a request's ``Accept`` headers:

* no ``Accept`` at all, or only wildcards: Docker schema 2;
* both types acceptable: the higher ``q`` wins, then the type named
  explicitly over one only matched by a wildcard, then Docker;
* only the OCI type acceptable (a client that asks for OCI only): OCI;
* neither acceptable and no wildcard: ``None`` (the caller answers
  ``MANIFEST_UNKNOWN``, as distribution does for a type the client refuses).

Clients send the list in every shape: several ``Accept:`` lines (containers/
image sends six), one comma-joined line ending in ``*/*`` (containerd), random
order with ``application/json`` (Docker). All are parsed the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import StrEnum


class MediaType(StrEnum):
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


MANIFEST_TYPES = (MediaType.DOCKER_MANIFEST, MediaType.OCI_MANIFEST)


def _parse(accept_headers: Iterable[str]) -> dict[str, float]:
    """Media range -> q, from any number of header lines (later lines do not
    lower what an earlier one granted)."""
    ranges: dict[str, float] = {}
    for line in accept_headers:
        for item in line.split(","):
            parts = [p.strip() for p in item.split(";")]
            media = parts[0].lower()
            if not media:
                continue
            q = 1.0
            for param in parts[1:]:
                key, _, value = param.partition("=")
                if key.strip().lower() == "q":
                    try:
                        q = float(value.strip())
                    except ValueError:
                        q = 0.0  # a malformed weight accepts nothing
                    # "nan" and "inf" parse as floats: NaN compared as neither
                    # more nor less than anything and accepted what it named.
                    q = min(max(q, 0.0), 1.0) if math.isfinite(q) else 0.0
            ranges[media] = max(q, ranges.get(media, 0.0))
    return ranges


def _quality(media: str, ranges: dict[str, float]) -> tuple[float, bool]:
    """``(q, named explicitly)`` for one media type."""
    if media in ranges:  # an exact entry wins over wildcards, even with q=0
        return ranges[media], True
    major = media.split("/", 1)[0]
    return ranges.get(f"{major}/*", ranges.get("*/*", 0.0)), False


def negotiate(accept_headers: Iterable[str]) -> MediaType | None:
    """The manifest type to serve for these ``Accept`` header values."""
    ranges = _parse(accept_headers)
    if not ranges:
        return MediaType.DOCKER_MANIFEST
    docker = _quality(MediaType.DOCKER_MANIFEST, ranges)
    oci = _quality(MediaType.OCI_MANIFEST, ranges)
    if docker[0] <= 0.0 and oci[0] <= 0.0:
        return None
    return MediaType.OCI_MANIFEST if oci > docker else MediaType.DOCKER_MANIFEST
