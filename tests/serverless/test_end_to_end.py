"""The serverless registry end to end, on real local stand-ins.

Both functions run under functions-framework as separate processes behind a
front proxy (the load balancer's URL map); metadata lives in Google's
Firestore emulator, blobs in fake-gcs-server; a cache miss runs a Cloud Run
job execution through the Admin API fake, whose task is the real builder
running real Nix. Clients follow the blob function's 307 to a V4 signed URL
served by the GCS emulator.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import PKGS
from tests.support import fixtures
from tests.support.clients import Skopeo
from tests.support.firestore_emulator import FirestoreEmulator, session_emulator
from tests.support.gcs_emulator import GcsEmulator, start_gcs_emulator
from tests.support.serverless import ServerlessStack, start_serverless
from tests.support.v4_signature import verify_v4_url

pytestmark = [pytest.mark.nix, pytest.mark.integration]

skopeo_client = fixtures.skopeo_client
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def firestore(request: pytest.FixtureRequest) -> FirestoreEmulator:
    return session_emulator(request)


@pytest.fixture
def stack(
    nix: None, tmp_path: Path, gcs: GcsEmulator, firestore: FirestoreEmulator
) -> Iterator[ServerlessStack]:
    started = start_serverless(tmp_path / "stack", gcs=gcs, firestore=firestore, pkgs_path=PKGS)
    try:
        yield started
    finally:
        started.stop()


def image_documents(stack: ServerlessStack) -> list[str]:
    collection = stack.firestore.client().collection(f"{stack.prefix}images")
    return sorted(doc.id for doc in collection.stream())


def test_skopeo_pulls_through_the_functions(stack: ServerlessStack, skopeo_client: Skopeo) -> None:
    out = skopeo_client.pull_and_run(stack.host, "shell/hello:latest", ["/bin/hello"])
    assert out.strip() == "Hello, world!"
    assert len(stack.cloud_run.runs) == 1
    run = stack.cloud_run.runs[0]
    assert "NIXERY_BUILD_REQUEST" in run.env
    assert stack.cloud_run.wait_for_tasks() == [0]
    # The result lives in the cloud stores, not on this machine's disk.
    assert len(image_documents(stack)) == 1
    objects = stack.gcs.object_names(stack.bucket, "blobs/sha256/")
    manifest = requests.get(f"{stack.url}/v2/shell/hello/manifests/latest", timeout=60).json()
    for descriptor in [manifest["config"], *manifest["layers"]]:
        assert f"blobs/sha256/{descriptor['digest'].split(':')[1]}" in objects
    assert stack.gcs.object_names(stack.bucket, "tmp/") == []
    # Blobs went through the blob function (as redirects), manifests through the other.
    assert stack.front.routed["blob"] >= len(manifest["layers"])


def test_blob_redirects_to_a_signed_url_and_head_answers_directly(stack: ServerlessStack) -> None:
    manifest = requests.get(f"{stack.url}/v2/shell/hello/manifests/latest", timeout=300)
    assert manifest.status_code == 200, manifest.text
    layer = manifest.json()["layers"][0]
    path = f"/v2/shell/hello/blobs/{layer['digest']}"

    head = requests.head(stack.url + path, timeout=60, allow_redirects=False)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == layer["size"]
    assert head.headers["Docker-Content-Digest"] == layer["digest"]
    assert "Location" not in head.headers

    get = requests.get(stack.url + path, timeout=60, allow_redirects=False)
    assert get.status_code == 307
    location = get.headers["Location"]
    assert urlsplit(location).netloc == urlsplit(stack.gcs.endpoint).netloc
    signed = verify_v4_url(location, stack.key.private_key.public_key())
    assert signed.expires_s == 600
    assert signed.email == stack.key.email
    body = requests.get(location, timeout=60).content
    assert "sha256:" + hashlib.sha256(body).hexdigest() == layer["digest"]
    again = requests.get(stack.url + path, timeout=60, allow_redirects=False)
    assert again.headers["Location"] == location  # cached: no new signature


def test_fifty_concurrent_cold_pulls_across_two_processes_run_one_job(
    nix: None, tmp_path: Path, gcs: GcsEmulator, firestore: FirestoreEmulator
) -> None:
    stack = start_serverless(
        tmp_path / "stack", gcs=gcs, firestore=firestore, pkgs_path=PKGS, manifest_processes=2
    )
    try:
        url = f"{stack.url}/v2/shell/foo/manifests/latest"
        with concurrent.futures.ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(lambda _: requests.get(url, timeout=600), range(50)))
        statuses = [a.status_code for a in answers]
        assert statuses == [200] * 50, [a.text for a in answers if a.status_code != 200][:3]
        assert len({a.content for a in answers}) == 1
        assert stack.front.routed["manifest"] == 50
        assert stack.cloud_run.run_count == 1
        assert len(stack.nix_builds()) == 1
        print(f"\n50 concurrent cold pulls: {stack.cloud_run.run_count} job run(s)")
    finally:
        stack.stop()


def test_a_builder_killed_mid_upload_leaves_nothing_visible_and_the_next_pull_completes(
    nix: None, tmp_path: Path, gcs: GcsEmulator, firestore: FirestoreEmulator
) -> None:
    stack = start_serverless(
        tmp_path / "stack",
        gcs=gcs,
        firestore=firestore,
        pkgs_path=PKGS,
        extra_env={"NIXERY_LEASE_S": "3", "NIXERY_BUILD_START_S": "60", "NIXERY_BUILD_WAIT_S": "2"},
    )
    try:
        url = f"{stack.url}/v2/large/shell/manifests/latest"
        first = requests.get(url, timeout=120)  # gives up waiting after 2 s
        assert first.status_code == 429, first.text
        assert int(first.headers["Retry-After"]) > 0
        # Wait until the builder is uploading (some blobs stored), then kill it.
        deadline = time.monotonic() + 120
        while not stack.gcs.object_names(stack.bucket):
            assert time.monotonic() < deadline, "the builder never started uploading"
            time.sleep(0.05)
        killed = stack.cloud_run.kill_running()
        assert len(killed) == 1
        assert image_documents(stack) == []  # no manifest points at missing blobs
        still = requests.get(url, timeout=120)
        assert still.status_code in (429, 200)
        # Once the dead builder's lease expires, a pull takes the build over.
        deadline = time.monotonic() + 300
        while True:
            answer = requests.get(url, timeout=120)
            if answer.status_code == 200:
                break
            assert answer.status_code == 429, answer.text
            assert time.monotonic() < deadline, "the build was never taken over"
            time.sleep(1)
        assert stack.cloud_run.run_count == 2
        manifest = answer.json()
        for layer in manifest["layers"]:
            head = requests.head(f"{stack.url}/v2/large/blobs/{layer['digest']}", timeout=60)
            assert head.status_code == 200
    finally:
        stack.stop()


def test_functions_cold_start(stack: ServerlessStack) -> None:
    for function in [*stack.manifest_functions, stack.blob_function]:
        assert function.cold_start_s > 0
        print(f"\n{function.target} function cold start: {function.cold_start_s:.2f} s")
    answer = requests.get(f"{stack.url}/v2/", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Docker-Distribution-API-Version"] == "registry/2.0"
