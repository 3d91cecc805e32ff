"""The values the metadata store keeps: images, manifests, layers, builds.

All frozen; they carry no behaviour beyond small conveniences, so every
adapter stores and returns exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ocimodel.digest import sha256_digest


@dataclass(frozen=True)
class StoredManifest:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)


@dataclass(frozen=True)
class ImageRecord:
    """A built image: the same blobs described by each manifest flavour."""

    cache_key: str
    manifests: tuple[StoredManifest, ...]
    build_id: str = ""

    def manifest(self, media_type: str) -> StoredManifest | None:
        return next((m for m in self.manifests if m.media_type == media_type), None)


@dataclass(frozen=True)
class LayerRecord:
    """A stored layer, keyed by the set of store paths it holds, so the same
    paths are never packed twice (by any image, on any instance)."""

    key: str
    digest: str
    size: int
    diff_id: str


class BuildState(StrEnum):
    PENDING = "pending"  # leased and dispatched, the builder has not reported yet
    RUNNING = "running"  # the builder heartbeats
    SUCCEEDED = "succeeded"  # the image record exists
    FAILED = "failed"  # error recorded; remembered for the failure TTL

    @property
    def active(self) -> bool:
        return self in (BuildState.PENDING, BuildState.RUNNING)


@dataclass(frozen=True)
class BuildError:
    """Why a build failed, as the registry will answer it."""

    code: str  # an ocimodel.errors.ErrorCode name
    message: str
    detail: Any = None


@dataclass(frozen=True)
class BuildRecord:
    build_id: str
    cache_key: str
    image: str  # the name (and tag) first asked for, for people reading records
    state: BuildState
    created_at: float
    updated_at: float
    lease_expires_at: float
    spec: str = ""  # the ImageSpec JSON handed to the builder
    finished_at: float | None = None
    error: BuildError | None = None
    log_tail: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    closure_size: int = 0
    layer_count: int = 0
    manifest_digest: str = ""

    def lease_valid(self, now: float) -> bool:
        return self.state.active and self.lease_expires_at > now


@dataclass(frozen=True)
class Claim:
    """The outcome of asking for a build: the record to follow, and whether
    this caller created it (and so must dispatch the builder)."""

    build: BuildRecord
    won: bool
