"""Image config and manifests as bytes: pure, deterministic JSON building.

The same layers give the same bytes, byte for byte, on every machine: keys
are sorted, separators fixed, and the only timestamp is the fixed epoch Nix
uses for store paths (``1970-01-01T00:00:01Z``). That makes manifest digests
stable across rebuilds, instances and cache hits, which upstream Nixery's are
not.

One config blob serves both manifest flavours: Docker schema 2 and OCI image
manifests differ only in the media types they declare for the config and the
layers, not in the blobs' bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocimodel.digest import sha256_digest
from ocimodel.mediatypes import MediaType

EPOCH = "1970-01-01T00:00:01Z"
_HISTORY_PATHS_SHOWN = 5  # enough for `docker history` to say what a layer is


@dataclass(frozen=True)
class LayerBlob:
    """A stored layer: gzip digest and size, and the uncompressed tar's digest."""

    digest: str
    size: int
    diff_id: str
    comment: str = ""


@dataclass(frozen=True)
class RuntimeConfig:
    """What the image runs with."""

    architecture: str
    os: str = "linux"
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Blob:
    """Bytes with their digest and media type (config and manifests)."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def layer_comment(paths: Sequence[str]) -> str:
    """A short, deterministic description of a layer for the config history."""
    names = [p.rsplit("/", 1)[-1].split("-", 1)[-1] for p in sorted(paths)]
    shown = ", ".join(names[:_HISTORY_PATHS_SHOWN])
    more = len(names) - _HISTORY_PATHS_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def build_config(runtime: RuntimeConfig, layers: Sequence[LayerBlob]) -> bytes:
    container: dict[str, Any] = {}
    if runtime.env:
        container["Env"] = list(runtime.env)
    if runtime.cmd:
        container["Cmd"] = list(runtime.cmd)
    if runtime.labels:
        container["Labels"] = dict(runtime.labels)
    config = {
        "architecture": runtime.architecture,
        "os": runtime.os,
        "created": EPOCH,
        "config": container,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [
            {"created": EPOCH, "created_by": "nixery-serverless", "comment": layer.comment}
            for layer in layers
        ],
    }
    return canonical_json(config)


_FLAVOURS = {
    MediaType.DOCKER_MANIFEST: (MediaType.DOCKER_CONFIG, MediaType.DOCKER_LAYER_GZIP),
    MediaType.OCI_MANIFEST: (MediaType.OCI_CONFIG, MediaType.OCI_LAYER_GZIP),
}


def build_manifest(media_type: MediaType, config: bytes, layers: Sequence[LayerBlob]) -> Blob:
    """The manifest of ``media_type`` (Docker schema 2 or OCI) for these blobs."""
    config_type, layer_type = _FLAVOURS[media_type]
    manifest = {
        "schemaVersion": 2,
        "mediaType": str(media_type),
        "config": {
            "mediaType": str(config_type),
            "size": len(config),
            "digest": sha256_digest(config),
        },
        "layers": [
            {"mediaType": str(layer_type), "size": layer.size, "digest": layer.digest}
            for layer in layers
        ],
    }
    return Blob(str(media_type), canonical_json(manifest))


def config_media_type(manifest_type: MediaType) -> MediaType:
    return _FLAVOURS[manifest_type][0]
