"""The image the in-process fuzz registry is seeded with: ``hello:latest``
as if built (a tiny real layer, its config and both manifests), so requests
reach hits, digests and ranges, not only rejections."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import time

from blobstore.filesystem import FilesystemBlobStore
from metastore.records import ImageRecord, StoredManifest
from metastore.sqlite import SqliteMetadataStore
from ocimodel.image import LayerBlob, RuntimeConfig, build_config, build_manifest
from ocimodel.mediatypes import MediaType
from registry.settings import Settings
from registry.specs import resolver_for, spec_for


def _layer() -> tuple[bytes, LayerBlob]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = b"Hello, fuzz!\n" * 300
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(data), 1
        tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(raw.getvalue(), mtime=0)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    digest = "sha256:" + hashlib.sha256(packed).hexdigest()
    return packed, LayerBlob(digest, len(packed), diff_id, "fuzz layer")


LAYER_BYTES, LAYER = _layer()
CONFIG = build_config(RuntimeConfig(architecture="amd64"), [LAYER])
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
MANIFESTS = tuple(
    build_manifest(media_type, CONFIG, [LAYER])
    for media_type in (MediaType.DOCKER_MANIFEST, MediaType.OCI_MANIFEST)
)
KNOWN = (LAYER.digest, CONFIG_DIGEST, *(m.digest for m in MANIFESTS))


def seed_image(settings_: Settings) -> None:
    """The image ``hello:latest`` as if built: its blobs and its record."""
    store = FilesystemBlobStore(settings_.storage_path)
    store.put_bytes(LAYER.digest, LAYER_BYTES, str(MediaType.DOCKER_LAYER_GZIP))
    store.put_bytes(CONFIG_DIGEST, CONFIG, str(MediaType.DOCKER_CONFIG))
    metadata = SqliteMetadataStore(settings_.metadata_path)
    spec = spec_for(settings_, resolver_for(settings_), "hello", "latest")
    claim = metadata.claim_build(
        cache_key=spec.cache_key,
        build_id="seed",
        image="hello:latest",
        spec=spec.to_json(),
        now=time.time(),
        lease_s=60,
        failure_ttl_s=60,
    )
    image = ImageRecord(
        spec.cache_key, tuple(StoredManifest(m.media_type, m.data) for m in MANIFESTS)
    )
    metadata.complete_build(
        claim.build.build_id,
        image,
        now=time.time(),
        timings={},
        closure_size=0,
        layer_count=1,
        log_tail="",
    )
