"""A client pulls a Nix-built image from the embedded registry with its blobs
in S3 (moto's S3 server), following the presigned redirects to moto.

``nixery serve`` runs as a user runs it, configured only by the environment
(``NIXERY_STORAGE_BACKEND=s3``, the bucket, the endpoint, credentials through
the standard AWS chain); metadata stays in SQLite, the default next to S3.
skopeo copies ``shell/hello`` (real Nix builds it from ``tests/pkgs``), the
image is unpacked and ``hello`` runs. Then the evidence that the bytes came
from moto: every blob of the manifest is an object in the bucket, the
registry answers its GET with a 307 to a presigned moto URL and its HEAD with
the size and no redirect, and nothing was stored on the local disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import PKGS
from tests.support import fixtures
from tests.support.clients import Skopeo
from tests.support.moto_server import MotoServer, moto_s3  # noqa: F401 (a fixture)
from tests.support.nixery_server import NixeryServer, start_nixery

pytestmark = [pytest.mark.nix, pytest.mark.integration, pytest.mark.clients]

skopeo_client = fixtures.skopeo_client
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)


@pytest.fixture
def bucket(moto_s3: MotoServer) -> str:
    return moto_s3.new_bucket()


@pytest.fixture
def s3_registry(
    nix: None, moto_s3: MotoServer, bucket: str, tmp_path: Path
) -> Iterator[NixeryServer]:
    server = start_nixery(
        tmp_path / "registry", {"NIXERY_PKGS_PATH": str(PKGS), **moto_s3.env(bucket)}
    )
    try:
        yield server
    finally:
        server.stop()


def test_pull_follows_presigned_redirects_to_moto(
    s3_registry: NixeryServer, moto_s3: MotoServer, bucket: str, skopeo_client: Skopeo
) -> None:
    out = skopeo_client.pull_and_run(s3_registry.host, "shell/hello:latest", ["/bin/hello"])
    assert out.strip() == "Hello, world!"

    manifest = s3_registry.get(
        "/v2/shell/hello/manifests/latest", headers={"Accept": MANIFEST_TYPES}
    )
    assert manifest.status_code == 200
    body = json.loads(manifest.content)
    blobs = [body["config"], *body["layers"]]
    assert len(blobs) >= 2
    stored = set(moto_s3.keys(bucket, "blobs/sha256/"))
    for blob in blobs:
        digest, size = blob["digest"], blob["size"]
        key = "blobs/sha256/" + digest.removeprefix("sha256:")
        assert key in stored, f"{digest} is not in the bucket"
        path = f"/v2/shell/hello/blobs/{digest}"
        head = s3_registry.head(path, allow_redirects=False)
        assert head.status_code == 200, "HEAD answers from metadata, no redirect"
        assert int(head.headers["Content-Length"]) == size
        redirect = s3_registry.get(path, allow_redirects=False)
        assert redirect.status_code == 307
        location = redirect.headers["Location"]
        assert location.startswith(f"{moto_s3.endpoint}/{bucket}/{key}?")
        assert "X-Amz-Signature=" in location
        fetched = requests.get(location, timeout=60)
        assert fetched.status_code == 200 and len(fetched.content) == size
    local = s3_registry.root / "storage" / "blobs" / "sha256"
    assert not local.exists() or not any(local.iterdir()), "no blob stored on local disk"
