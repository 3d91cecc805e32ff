"""The metadata store port: what is built, what is being built, and how.

Adapters, one module each: :mod:`metastore.sqlite` (embedded default) and
:mod:`metastore.firestore`. Manifests are small and live here (by cache key
and by digest); blobs live in the blob store. The builder writes every blob
first and the image record last (:meth:`MetadataStore.complete_build`), so a
manifest never points at a missing blob.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from metastore.records import (
    BuildError,
    BuildRecord,
    Claim,
    ImageRecord,
    LayerRecord,
    StoredManifest,
)


class MetadataStore(Protocol):
    # -- images (the hot path) ---------------------------------------------
    def get_image(self, cache_key: str) -> ImageRecord | None: ...

    def get_manifest(self, digest: str) -> StoredManifest | None: ...

    # -- layer cache ----------------------------------------------------------
    def get_layer(self, key: str) -> LayerRecord | None: ...

    def put_layer(self, layer: LayerRecord) -> None: ...

    # -- builds ---------------------------------------------------------------
    def claim_build(
        self,
        *,
        cache_key: str,
        build_id: str,
        image: str,
        spec: str,
        now: float,
        lease_s: float,
        failure_ttl_s: float,
        image_gone: bool = False,
    ) -> Claim:
        """Atomically follow the key's live build or create a new one
        (:func:`metastore.lease.decide`)."""
        ...

    def get_build(self, build_id: str) -> BuildRecord | None: ...

    def heartbeat(
        self, build_id: str, *, now: float, lease_s: float, timings: dict[str, float] | None = None
    ) -> None:
        """Mark the build running and extend its lease."""
        ...

    def complete_build(
        self,
        build_id: str,
        image: ImageRecord,
        *,
        now: float,
        timings: dict[str, float],
        closure_size: int,
        layer_count: int,
        log_tail: str,
    ) -> None:
        """Store the image record and mark the build succeeded, atomically."""
        ...

    def fail_build(
        self,
        build_id: str,
        error: BuildError,
        *,
        now: float,
        timings: dict[str, float],
        log_tail: str,
    ) -> None: ...

    def recent_builds(self, limit: int) -> Sequence[BuildRecord]: ...
