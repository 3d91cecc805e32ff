"""Writing a built image as an OCI image layout directory.

``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``: what skopeo,
podman (``oci:DIR``), umoci and containerd's importer read. The index
names the OCI manifest and tags it with ``org.opencontainers.image.ref.name``.
"""

from __future__ import annotations

import json
from pathlib import Path

from blobstore.port import BlobStore
from metastore.records import ImageRecord
from ocimodel.image import canonical_json
from ocimodel.mediatypes import MediaType


def write_layout(image: ImageRecord, store: BlobStore, target: Path, ref_name: str) -> str:
    """Write the image's OCI flavour to ``target``; return the manifest digest."""
    manifest = image.manifest(str(MediaType.OCI_MANIFEST))
    if manifest is None:
        raise ValueError("image has no OCI manifest")
    blobs = target / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    document = json.loads(manifest.data)
    for descriptor in [document["config"], *document["layers"]]:
        digest = descriptor["digest"]
        path = blobs / digest.partition(":")[2]
        if path.exists():
            continue
        with open(path, "wb") as out:
            for chunk in store.read(digest):
                out.write(chunk)
    (blobs / manifest.digest.partition(":")[2]).write_bytes(manifest.data)
    (target / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": str(MediaType.OCI_INDEX),
        "manifests": [
            {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": len(manifest.data),
                "annotations": {"org.opencontainers.image.ref.name": ref_name},
            }
        ],
    }
    (target / "index.json").write_bytes(canonical_json(index))
    return manifest.digest
