"""Real registry clients pull images our registry builds with real Nix, and
run them: docker (its own dockerd), podman, containerd (ctr), buildah and
skopeo (copy + unpack + chroot). Then the protocol probe that found every
fault planted on purpose finds none on our registry.
"""

from __future__ import annotations

import pytest

from tests.support import fixtures
from tests.support.clients import RegistryClient
from tests.support.nixery_server import NixeryServer
from tests.support.registry_probe import format_findings, probe_registry

pytestmark = [pytest.mark.clients, pytest.mark.nix, pytest.mark.integration]

docker_client = fixtures.docker_client
containerd_client = fixtures.containerd_client
podman_client = fixtures.podman_client
buildah_client = fixtures.buildah_client
skopeo_client = fixtures.skopeo_client
registry_client = fixtures.registry_client


def test_client_pulls_and_runs_hello(
    shared_registry: NixeryServer, registry_client: RegistryClient
) -> None:
    out = registry_client.pull_and_run(shared_registry.host, "shell/hello:latest", ["hello"])
    assert out.strip() == "Hello, world!"


def test_client_runs_bash_from_the_image(
    shared_registry: NixeryServer, registry_client: RegistryClient
) -> None:
    out = registry_client.pull_and_run(
        shared_registry.host, "shell/foo:latest", ["bash", "-c", "echo from bash; foo"]
    )
    assert out.splitlines()[0] == "from bash"
    assert len(out.splitlines()) >= 2  # foo ran too (it reads libfoo's data)


def test_protocol_probe_finds_nothing(shared_registry: NixeryServer) -> None:
    assert shared_registry.get("/v2/shell/hello/manifests/latest").status_code == 200
    findings = probe_registry(shared_registry.url, "shell/hello", ["latest"])
    assert findings == [], format_findings(findings)
