"""Tiny test images written by Python as OCI image layouts.

The busybox image has one gzip layer holding the static ``/bin/busybox``
(Debian's busybox-static) and a symlink ``/bin/sh``, and a config whose
``Cmd`` is ``["/bin/sh"]``. Everything is deterministic (mtime 0, uid 0), so
the same host binary always gives the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

BUSYBOX = Path("/bin/busybox")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class FileEntry:
    """One entry of a layer: a regular file, a directory or a symlink."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"  # "file", "dir" or "symlink"
    target: str = ""


def layer_tar(entries: list[FileEntry]) -> bytes:
    """An uncompressed, reproducible tar of ``entries``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


@dataclass(frozen=True)
class OciImage:
    """Digests of an image written to an OCI layout."""

    layout: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    diff_ids: tuple[str, ...]

    @property
    def source(self) -> str:
        """The containers/image reference, e.g. for ``skopeo copy``."""
        return f"oci:{self.layout}:{self.tag}"


def _write_blob(layout: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def write_oci_layout(
    layout: Path,
    layers: list[list[FileEntry]],
    *,
    cmd: list[str],
    tag: str = "latest",
    env: list[str] | None = None,
) -> OciImage:
    """Write a single-manifest OCI image layout with gzip layers."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    layer_descriptors = []
    diff_ids = []
    for entries in layers:
        raw = layer_tar(entries)
        diff_ids.append(sha256_digest(raw))
        compressed = gzip.compress(raw, compresslevel=6, mtime=0)
        layer_descriptors.append(
            {
                "mediaType": OCI_LAYER_GZIP,
                "digest": _write_blob(layout, compressed),
                "size": len(compressed),
            }
        )
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:01Z",
        "config": {"Cmd": cmd, "Env": env or ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:01Z", "created_by": "tests.support.images"}],
    }
    config_bytes = canonical_json(config)
    config_digest = _write_blob(layout, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descriptors,
    }
    manifest_bytes = canonical_json(manifest)
    manifest_digest = _write_blob(layout, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {REF_NAME: tag},
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    (layout / "index.json").write_bytes(canonical_json(index))
    return OciImage(
        layout=layout,
        tag=tag,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digests=tuple(str(d["digest"]) for d in layer_descriptors),
        diff_ids=tuple(diff_ids),
    )


def busybox_layout(layout: Path, busybox: Path = BUSYBOX, tag: str = "latest") -> OciImage:
    """The busybox test image: ``/bin/busybox`` plus ``/bin/sh`` -> busybox."""
    entries = [
        FileEntry("bin", kind="dir", mode=0o755),
        FileEntry("bin/busybox", data=busybox.read_bytes(), mode=0o755),
        FileEntry("bin/sh", kind="symlink", target="busybox", mode=0o777),
    ]
    return write_oci_layout(layout, [entries], cmd=["/bin/sh"], tag=tag)


def add_image_index(image: OciImage, tag: str = "index") -> str:
    """Add to ``image``'s layout an OCI image index (one linux/amd64 entry,
    the image's manifest) tagged ``tag``; returns the index digest.

    ``skopeo copy --all oci:LAYOUT:TAG docker://...`` pushes it as an index,
    so clients must resolve the platform's manifest by digest.
    """
    layout = image.layout
    manifest_size = _blob_path(layout, image.manifest_digest).stat().st_size
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    index_bytes = canonical_json(index)
    index_digest = _write_blob(layout, index_bytes)
    top = json.loads((layout / "index.json").read_text())
    top["manifests"].append(
        {
            "mediaType": OCI_INDEX,
            "digest": index_digest,
            "size": len(index_bytes),
            "annotations": {REF_NAME: tag},
        }
    )
    (layout / "index.json").write_bytes(canonical_json(top))
    return index_digest


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return layout / "blobs" / algorithm / encoded
