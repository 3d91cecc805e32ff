"""The manifest function's logic: ``/v2/`` and manifests by tag or digest.

By tag: the name becomes an :class:`ImageSpec` (packages, architecture, the
source pinned for the tag) and its cache key; a hit is answered from the
metadata store without touching Nix, a miss goes to the
:class:`BuildCoordinator`. The manifest flavour follows ``Accept``
(:func:`ocimodel.mediatypes.negotiate`). By digest: the stored manifest with
that digest, whichever flavour it is, byte for byte what the tag answered.

Manifests are immutable per cache key (the key pins every input), so hot ones
are kept in a small in-process map and a warm GET costs no database read.
GET and HEAD answer the same headers: exact ``Content-Type``, real
``Content-Length``, ``Docker-Content-Digest`` and ``ETag``; a matching
``If-None-Match`` gets 304.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from metastore.port import MetadataStore
from metastore.records import ImageRecord, StoredManifest
from nixspec.names import validate_name
from nixspec.sources import SourceResolver
from nixspec.spec import ImageSpec
from ocimodel.digest import looks_like_digest, parse_digest
from ocimodel.errors import ErrorCode, RegistryError
from ocimodel.mediatypes import negotiate
from registry.builds import BuildCoordinator
from registry.http import Handler, count_param, json_response, not_found, require_read
from registry.logs import TRACE, add_labels
from registry.pages import PAGE_KINDS, Pages, with_build_link
from registry.routes import Kind, Route, parse
from registry.settings import Settings
from registry.specs import spec_for

HOT_MANIFESTS = 1024  # entries: ~2 KiB each, so a few MiB at most


@dataclass
class _Hot:
    """A tiny thread-safe LRU of immutable values."""

    limit: int
    entries: OrderedDict[str, object] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: str) -> object | None:
        with self.lock:
            value = self.entries.get(key)
            if value is not None:
                self.entries.move_to_end(key)
            return value

    def put(self, key: str, value: object) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.limit:
                self.entries.popitem(last=False)


def manifest_response(request: Request, manifest: StoredManifest) -> Response:
    digest = manifest.digest
    headers = {
        "Content-Type": manifest.media_type,
        "Content-Length": str(len(manifest.data)),
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000" if request.path.endswith(digest) else "no-cache",
    }
    if request.if_none_match.contains(digest):
        return Response(
            status=304, headers={k: v for k, v in headers.items() if k != "Content-Length"}
        )
    return Response(manifest.data, status=200, headers=headers)


class ManifestService:
    trigger: Handler | None = None  # POST /_nixery/prebuild, when enabled (registry.trigger)

    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        resolver: SourceResolver,
        coordinator: BuildCoordinator,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.resolver = resolver
        self.coordinator = coordinator
        self._images = _Hot(HOT_MANIFESTS)
        self._by_digest = _Hot(HOT_MANIFESTS)
        self.pages = Pages(settings, metadata, resolver)

    def handle(self, request: Request) -> Response:
        route = parse(request.path)
        if route.kind is Kind.BASE:
            require_read(request)
            return json_response({})
        if route.kind is Kind.UPLOAD:
            validate_name(route.name, self.settings.max_name_length)
            require_read(request)  # every upload method is a write: 405 with Allow
            # A read of an upload session: there are none (the spec's answer).
            raise RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, "this registry takes no uploads")
        if route.kind is Kind.TAGS:
            return self._tags(request, route)
        if route.kind is Kind.TRIGGER and self.trigger is not None:
            return self.trigger(request)
        if route.kind in PAGE_KINDS:
            return self.pages.handle(request, route)
        if route.kind is Kind.BLOB:
            return self._blob_detour(request, route)
        if route.kind is not Kind.MANIFEST:
            raise not_found(request.path)
        validate_name(route.name, self.settings.max_name_length)
        require_read(request)
        if looks_like_digest(route.reference):
            return manifest_response(request, self._by_digest_lookup(route.reference))
        return manifest_response(request, self._by_tag(request, route))

    def _blob_detour(self, request: Request, route: Route) -> Response:
        """A blob request that reached this function: send it where the blob
        function answers it. The load balancer's path templates allow at most
        five wildcards, so blob paths of names with more components than the
        URL map spells out arrive here; blobs are content-addressed, so the
        same digest under the name's first component is the same blob."""
        validate_name(route.name, self.settings.max_name_length)
        require_read(request)
        digest = parse_digest(route.reference)
        first = route.name.split("/", 1)[0]
        return Response(
            status=307,
            headers={"Location": f"/v2/{first}/blobs/{digest}", "Docker-Content-Digest": digest},
        )

    def _by_digest_lookup(self, reference: str) -> StoredManifest:
        digest = parse_digest(reference)
        hot = self._by_digest.get(digest)
        if isinstance(hot, StoredManifest):
            return hot
        manifest = self.metadata.get_manifest(digest)
        if manifest is None:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, f"no manifest with digest {digest}")
        self._by_digest.put(digest, manifest)
        return manifest

    def _by_tag(self, request: Request, route: Route) -> StoredManifest:
        media_type = negotiate(request.headers.getlist("Accept"))
        if media_type is None:
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN,
                "no acceptable manifest type: this registry serves "
                "application/vnd.docker.distribution.manifest.v2+json and "
                "application/vnd.oci.image.manifest.v1+json",
            )
        add_labels(image=f"{route.name}:{route.reference}")  # as the builder labels its lines
        spec = spec_for(self.settings, self.resolver, route.name, route.reference)
        try:
            image = self._image(spec)
        except RegistryError as error:  # a failed build: point at its page
            raise with_build_link(error, request) from error
        manifest = image.manifest(str(media_type))
        if manifest is None:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, f"no {media_type} manifest stored")
        return manifest

    def _image(self, spec: ImageSpec) -> ImageRecord:
        key = spec.cache_key
        hot = self._images.get(key)
        if isinstance(hot, ImageRecord):
            return hot
        image = self.metadata.get_image(key) or self.coordinator.obtain(spec, TRACE.get())
        self._images.put(key, image)
        for manifest in image.manifests:
            self._by_digest.put(manifest.digest, manifest)
        return image

    def _tags(self, request: Request, route: Route) -> Response:
        """Every name serves ``latest`` (and, from a git source, any ref); the
        list is what can be enumerated: ``latest``."""
        validate_name(route.name, self.settings.max_name_length)
        require_read(request)
        tags = ["latest"]
        last = request.args.get("last", "")
        tags = [t for t in tags if t > last]
        n = count_param(request.args.get("n", ""))
        if n is not None:
            tags = tags[:n]
        return json_response({"name": route.name, "tags": tags})
