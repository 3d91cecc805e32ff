"""A private registry: ``nixery serve`` with ``NIXERY_AUTH=basic``, pulled
by real clients with credentials (skopeo ``--creds``/``--src-creds``, docker
login) and refused without them, over real HTTP with real Nix builds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from tests.conftest import PKGS
from tests.support import fixtures, nixery_server
from tests.support.clients import Docker, Skopeo
from tests.support.nixery_server import NixeryServer, start_nixery
from tests.support.procs import CommandFailed

pytestmark = [pytest.mark.nix, pytest.mark.integration]

USER, PASSWORD = "puller", "s3cret pass:with colon"
docker_client = fixtures.docker_client
skopeo_client = fixtures.skopeo_client


@pytest.fixture(scope="module")
def private_registry(nix: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NixeryServer]:
    root = tmp_path_factory.mktemp("private-registry")
    htpasswd = root / "users.htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
    htpasswd.write_text(f"{USER}:{hashed}\n")
    env = {
        "NIXERY_PKGS_PATH": str(PKGS),
        "NIXERY_AUTH": "basic",
        "NIXERY_AUTH_HTPASSWD": str(htpasswd),
    }
    # start_nixery waits for /v2/ to answer 200; a private registry answers 401.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nixery_server, "http_ok", challenges)
        server = start_nixery(root, env)
    try:
        yield server
    finally:
        server.stop()


def challenges(url: str) -> bool:
    return requests.get(url, timeout=5).status_code == 401


def test_anonymous_and_wrong_credentials_get_the_challenge(
    private_registry: NixeryServer,
) -> None:
    for auth in (None, (USER, "wrong"), ("nobody", PASSWORD)):
        response = private_registry.get("/v2/hello/manifests/latest", auth=auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="nixery"'
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert private_registry.nix_calls() == []  # nothing was built for anyone


def test_credentials_pull_over_http(private_registry: NixeryServer) -> None:
    auth = (USER, PASSWORD)
    manifest = private_registry.get("/v2/hello/manifests/latest", auth=auth)
    assert manifest.status_code == 200, manifest.text
    layer = manifest.json()["layers"][0]["digest"]
    assert private_registry.get(f"/v2/hello/blobs/{layer}", auth=auth).status_code == 200
    assert private_registry.get(f"/v2/hello/blobs/{layer}").status_code == 401
    log = private_registry.process.log_path.read_text(errors="replace")
    assert PASSWORD not in log


@pytest.mark.clients
def test_skopeo_with_credentials(
    private_registry: NixeryServer, skopeo_client: Skopeo, tmp_path: Path
) -> None:
    ref = f"docker://{private_registry.host}/shell/hello:latest"
    with pytest.raises(CommandFailed) as refused:
        skopeo_client.skopeo("inspect", "--tls-verify=false", ref)
    assert "unauthorized" in refused.value.result.stderr.lower()

    creds = f"{USER}:{PASSWORD}"
    out = skopeo_client.skopeo("inspect", "--tls-verify=false", "--creds", creds, ref).stdout
    assert json.loads(out)["Architecture"] == "amd64"
    skopeo_client.copy(ref, f"oci:{tmp_path / 'layout'}:latest", "--src-creds", creds)
    rootfs = skopeo_client.unpack(tmp_path / "layout", "latest", tmp_path / "bundle")
    assert (rootfs / "bin" / "hello").exists()


@pytest.mark.clients
def test_docker_login_and_pull(private_registry: NixeryServer, docker_client: Docker) -> None:
    host = private_registry.host
    with pytest.raises(CommandFailed):
        docker_client.pull(f"{host}/hello:latest")
    with pytest.raises(CommandFailed):
        docker_client.docker("login", "--username", USER, "--password", "wrong", host)
    docker_client.docker("login", "--username", USER, "--password", PASSWORD, host)
    try:
        docker_client.pull(f"{host}/shell/hello:latest")
        out = docker_client.run(f"{host}/shell/hello:latest", "hello")
        assert out.strip() == "Hello, world!"
    finally:
        docker_client.docker("logout", host)
        docker_client.remove_image(f"{host}/shell/hello:latest")
