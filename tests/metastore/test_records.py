"""The metadata values (`metastore.records`)."""

from __future__ import annotations

import hashlib

import pytest

from metastore.records import BuildRecord, BuildState, ImageRecord, StoredManifest
from ocimodel.mediatypes import MediaType


@pytest.mark.parametrize(
    ("state", "active"),
    [
        pytest.param(BuildState.PENDING, True, id="pending"),
        pytest.param(BuildState.RUNNING, True, id="running"),
        pytest.param(BuildState.SUCCEEDED, False, id="succeeded"),
        pytest.param(BuildState.FAILED, False, id="failed"),
    ],
)
def test_active_states(state: BuildState, active: bool) -> None:
    assert state.active is active


@pytest.mark.parametrize(
    ("state", "expires", "now", "valid"),
    [
        pytest.param(BuildState.RUNNING, 10.0, 9.9, True, id="running-in-lease"),
        pytest.param(BuildState.RUNNING, 10.0, 10.0, False, id="running-expired"),
        pytest.param(BuildState.PENDING, 10.0, 0.0, True, id="pending-in-lease"),
        pytest.param(BuildState.FAILED, 10.0, 0.0, False, id="failed-never-valid"),
        pytest.param(BuildState.SUCCEEDED, 10.0, 0.0, False, id="succeeded-never-valid"),
    ],
)
def test_lease_valid(state: BuildState, expires: float, now: float, valid: bool) -> None:
    record = BuildRecord("b", "k", "i", state, 0.0, 0.0, expires)
    assert record.lease_valid(now) is valid


def test_stored_manifest_digest() -> None:
    manifest = StoredManifest(str(MediaType.OCI_MANIFEST), b'{"schemaVersion":2}')
    assert manifest.digest == "sha256:" + hashlib.sha256(b'{"schemaVersion":2}').hexdigest()


@pytest.mark.parametrize(
    ("media_type", "data"),
    [
        pytest.param(str(MediaType.DOCKER_MANIFEST), b"docker", id="docker"),
        pytest.param(str(MediaType.OCI_MANIFEST), b"oci", id="oci"),
        pytest.param(str(MediaType.OCI_INDEX), None, id="absent"),
    ],
)
def test_image_manifest_by_media_type(media_type: str, data: bytes | None) -> None:
    image = ImageRecord(
        "k",
        (
            StoredManifest(str(MediaType.DOCKER_MANIFEST), b"docker"),
            StoredManifest(str(MediaType.OCI_MANIFEST), b"oci"),
        ),
    )
    found = image.manifest(media_type)
    assert (found.data if found else None) == data
