"""The registry's URL space: pure parsing of a request path.

=====================================  ===========================
path                                   route
=====================================  ===========================
``/v2/`` (and ``/v2``)                 base: API version check
``/v2/<name>/manifests/<reference>``   manifest by tag or digest
``/v2/<name>/blobs/<digest>``          blob
``/v2/<name>/blobs/uploads/...``       uploads (unsupported: 405)
``/v2/<name>/tags/list``               tags
``/``                                  landing page (HTML, :mod:`registry.pages`)
``/builds`` and ``/builds/<id>``       recent builds, one build (HTML)
``/_nixery/prebuild``                  the prebuild trigger (POST)
=====================================  ===========================

Names have any number of components, so the last ``/manifests/`` or
``/blobs/`` separates name from reference. Routing uses the path only: query
strings (containerd's ``?ns=``) never change the route, unlike upstream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    BASE = "base"
    MANIFEST = "manifest"
    BLOB = "blob"
    UPLOAD = "upload"
    TAGS = "tags"
    HOME = "home"
    BUILDS = "builds"
    BUILD = "build"
    TRIGGER = "trigger"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Route:
    kind: Kind
    name: str = ""
    reference: str = ""


TRIGGER_PATH = "/_nixery/prebuild"  # outside /v2/: no image name can collide
_MANIFEST = re.compile(r"/v2/(?P<name>.+)/manifests/(?P<ref>[^/]*)")
_UPLOAD = re.compile(r"/v2/(?P<name>.+)/blobs/uploads(?:/[^/]*)?")
_BLOB = re.compile(r"/v2/(?P<name>.+)/blobs/(?P<ref>[^/]*)")
_TAGS = re.compile(r"/v2/(?P<name>.+)/tags/list")
_BUILD_PAGE = re.compile(r"/builds/(?P<ref>[^/]+)")


def parse(path: str) -> Route:
    if path in ("/v2", "/v2/"):
        return Route(Kind.BASE)
    if path == "/":
        return Route(Kind.HOME)
    if path in ("/builds", "/builds/"):
        return Route(Kind.BUILDS)
    if page := _BUILD_PAGE.fullmatch(path):
        return Route(Kind.BUILD, reference=page.group("ref"))
    if path == TRIGGER_PATH:
        return Route(Kind.TRIGGER)
    for pattern, kind in (
        (_UPLOAD, Kind.UPLOAD),
        (_MANIFEST, Kind.MANIFEST),
        (_BLOB, Kind.BLOB),
        (_TAGS, Kind.TAGS),
    ):
        match = pattern.fullmatch(path)
        if match:
            groups = match.groupdict()
            return Route(kind, groups["name"], groups.get("ref") or "")
    return Route(Kind.UNKNOWN)
