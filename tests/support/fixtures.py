"""pytest fixtures for the real-client harness.

Import them into a conftest (or a test module) explicitly::

    from tests.support.fixtures import docker_client, podman_client  # noqa: F401

Daemons (dockerd, containerd) start once per session; the daemonless
clients get a fresh temporary root per test. Every fixture stops what it
started by PID at teardown and fails the teardown if a process, mount or
cgroup it made is still there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.clients import (
    CLIENT_CLASSES,
    Buildah,
    Containerd,
    Docker,
    Podman,
    RegistryClient,
    Skopeo,
    skip_unless_installed,
)
from tests.support.images import BUSYBOX, OciImage, add_image_index, busybox_layout
from tests.support.reference_registry import DockerRegistry

CLIENT_NAMES = tuple(CLIENT_CLASSES)
"""docker, podman, containerd, buildah, skopeo: the ``registry_client`` params."""


def _assert_clean(client: RegistryClient) -> None:
    client.close()
    left = client.leftovers()
    assert not left, f"{client.name} left behind:\n" + "\n".join(left)


@pytest.fixture(scope="session")
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """A dockerd of our own (vfs, no networking) and the docker CLI for it."""
    skip_unless_installed(*Docker.tools)
    client = Docker(tmp_path_factory.mktemp("docker"))
    try:
        client.start()
        yield client
    finally:
        _assert_clean(client)


@pytest.fixture(scope="session")
def containerd_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """A containerd of our own (CRI off) driven by ctr."""
    skip_unless_installed(*Containerd.tools)
    client = Containerd(tmp_path_factory.mktemp("containerd"))
    try:
        client.start()
        yield client
    finally:
        _assert_clean(client)


@pytest.fixture
def podman_client(tmp_path: Path) -> Iterator[Podman]:
    skip_unless_installed(*Podman.tools)
    client = Podman(tmp_path / "podman")
    try:
        yield client
    finally:
        _assert_clean(client)


@pytest.fixture
def buildah_client(tmp_path: Path) -> Iterator[Buildah]:
    skip_unless_installed(*Buildah.tools)
    client = Buildah(tmp_path / "buildah")
    try:
        yield client
    finally:
        _assert_clean(client)


@pytest.fixture
def skopeo_client(tmp_path: Path) -> Iterator[Skopeo]:
    skip_unless_installed(*Skopeo.tools)
    client = Skopeo(tmp_path / "skopeo")
    try:
        yield client
    finally:
        _assert_clean(client)


@pytest.fixture(params=CLIENT_NAMES)
def registry_client(request: pytest.FixtureRequest) -> RegistryClient:
    """Each real client in turn (the test runs once per client)."""
    client: RegistryClient = request.getfixturevalue(f"{request.param}_client")
    return client


@pytest.fixture(scope="session")
def reference_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1, empty storage."""
    skip_unless_installed("docker-registry")
    registry = DockerRegistry(tmp_path_factory.mktemp("docker-registry"))
    try:
        registry.start()
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """The busybox test image as an OCI layout (tags ``latest`` and ``index``)."""
    if not BUSYBOX.is_file():
        pytest.skip("no static /bin/busybox: apt-get install busybox-static")
    image = busybox_layout(tmp_path_factory.mktemp("busybox-layout") / "layout")
    add_image_index(image, "index")
    return image


@dataclass(frozen=True)
class PushedImage:
    """Test images in a registry: ``tags`` maps tag -> manifest media type."""

    registry: str  # 127.0.0.1:PORT
    repository: str
    tags: dict[str, str] = field(default_factory=dict)

    def ref(self, tag: str) -> str:
        return f"{self.registry}/{self.repository}:{tag}"


#: The three shapes pushed: an OCI manifest, a Docker schema 2 manifest, and
#: an OCI index over the OCI manifest.
PUSHED_TAGS = {
    "latest": "application/vnd.oci.image.manifest.v1+json",
    "v2s2": "application/vnd.docker.distribution.manifest.v2+json",
    "index": "application/vnd.oci.image.index.v1+json",
}


def push_busybox(
    skopeo: Skopeo, image: OciImage, registry: str, repository: str = "test/busybox"
) -> PushedImage:
    """Push the busybox layout as ``latest`` (OCI), ``v2s2`` (Docker) and
    ``index`` (OCI index) with skopeo."""
    skopeo.push_layout(image.layout, image.tag, registry, f"{repository}:latest")
    skopeo.push_layout(image.layout, image.tag, registry, f"{repository}:v2s2", "--format", "v2s2")
    skopeo.push_layout(image.layout, "index", registry, f"{repository}:index", "--all")
    return PushedImage(registry, repository, dict(PUSHED_TAGS))


@pytest.fixture(scope="session")
def reference_busybox(
    reference_registry: DockerRegistry,
    busybox_image: OciImage,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PushedImage]:
    """The busybox image pushed to the reference registry in three shapes."""
    skip_unless_installed(*Skopeo.tools)
    with Skopeo(tmp_path_factory.mktemp("push")) as skopeo:
        yield push_busybox(skopeo, busybox_image, reference_registry.host)
