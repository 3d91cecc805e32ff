"""From a layer plan to stored blobs and the image record.

For every planned layer (a set of store paths) the layer cache is asked
first: a layer whose paths were packed before, by any image, is reused by
digest and never packed again. Otherwise the layer is packed into a scratch
file beside the blob store (digests computed while streaming) and handed to
the store. Then the customisation layer, the config, and the two manifests
(Docker schema 2 and OCI), which only become visible when the caller records
the image: blobs first, record last.

Layers are compressed on every core (:mod:`builder_job.pgzip`) by one pool
per process, shared by all the layers and builds of the process.

Manifest order: the planned layers in the planner's order (most shared
first, so images share a prefix: moby/moby#38446), then the customisation
layer, which is specific to the image.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from blobstore.port import BlobStore
from builder_job import customisation
from builder_job.pgzip import default_threads
from builder_job.tarlayer import Entry, PackedLayer, pack_layer
from metastore.port import MetadataStore
from metastore.records import ImageRecord, LayerRecord, StoredManifest
from ocimodel.image import LayerBlob, RuntimeConfig, build_config, build_manifest, layer_comment
from ocimodel.mediatypes import MediaType

LAYER_MEDIA_TYPE = MediaType.DOCKER_LAYER_GZIP
SSL_CERT_FILE = "/etc/ssl/certs/ca-bundle.crt"
PATH = "/bin:/usr/bin:/sbin:/usr/sbin"


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def compression_pool() -> Executor:
    """The process's compression threads, one per core, made on first use."""
    global _pool  # noqa: PLW0603
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(default_threads(), thread_name_prefix="gzip")
        return _pool


def paths_key(paths: Sequence[str]) -> str:
    """The layer cache key of a set of store paths."""
    return hashlib.sha256("\n".join(["paths-v1", *sorted(paths)]).encode()).hexdigest()


@dataclass
class LayerStats:
    packed: int = 0
    reused: int = 0
    packed_bytes: int = 0


class LayerWriter:
    """Packs layers into the blob store, through the layer cache."""

    def __init__(
        self, store: BlobStore, metadata: MetadataStore, executor: Executor | None = None
    ) -> None:
        self.store = store
        self.metadata = metadata
        self.executor = executor
        self.stats = LayerStats()

    def _cached(self, key: str) -> LayerRecord | None:
        record = self.metadata.get_layer(key)
        if record is not None and self.store.size(record.digest) == record.size:
            return record
        return None

    def _pack(self, key: str, paths: Sequence[str], entries: Sequence[Entry]) -> LayerRecord:
        fd, name = tempfile.mkstemp(dir=self.store.scratch_dir(), prefix="layer-")
        try:
            with os.fdopen(fd, "wb") as handle:
                packed: PackedLayer = pack_layer(
                    handle, paths, entries, executor=self.executor or compression_pool()
                )
            self.store.put_file(packed.digest, Path(name), str(LAYER_MEDIA_TYPE))
        finally:
            Path(name).unlink(missing_ok=True)
        record = LayerRecord(key, packed.digest, packed.size, packed.diff_id)
        self.metadata.put_layer(record)  # after the blob: the cache never points at nothing
        self.stats.packed += 1
        self.stats.packed_bytes += packed.size
        return record

    def layer(
        self, key: str, comment: str, paths: Sequence[str] = (), entries: Sequence[Entry] = ()
    ) -> LayerBlob:
        record = self._cached(key)
        if record is None:
            record = self._pack(key, paths, entries)
        else:
            self.stats.reused += 1
        return LayerBlob(record.digest, record.size, record.diff_id, comment)


def runtime_for(arch: str, runs_shell: bool) -> RuntimeConfig:
    return RuntimeConfig(
        architecture=arch,
        env=(f"PATH={PATH}", f"SSL_CERT_FILE={SSL_CERT_FILE}"),
        cmd=("bash",) if runs_shell else (),
    )


def assemble(
    writer: LayerWriter,
    *,
    cache_key: str,
    plan: Sequence[Sequence[str]],
    package_paths: Sequence[str],
    runtime: RuntimeConfig,
) -> ImageRecord:
    """Store every layer and the config; return the (unrecorded) image."""
    layers = [writer.layer(paths_key(paths), layer_comment(paths), paths=paths) for paths in plan]
    layers.append(
        writer.layer(
            customisation.layer_key(package_paths),
            "customisation layer: packages linked into /",
            entries=customisation.plan_entries(package_paths),
        )
    )
    config = build_config(runtime, layers)
    docker = build_manifest(MediaType.DOCKER_MANIFEST, config, layers)
    oci = build_manifest(MediaType.OCI_MANIFEST, config, layers)
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    writer.store.put_bytes(config_digest, config, str(MediaType.DOCKER_CONFIG))
    return ImageRecord(
        cache_key=cache_key,
        manifests=(
            StoredManifest(docker.media_type, docker.data),
            StoredManifest(oci.media_type, oci.data),
        ),
    )
