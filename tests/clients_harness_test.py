"""The real-client harness, proven against Debian's docker-registry 2.8.

A tiny busybox image is written by Python as an OCI layout, pushed with
skopeo in three shapes (OCI manifest, Docker schema 2 manifest, OCI index),
then every real client pulls each shape and runs ``busybox echo hello``. The
registry probe runs against the same server and must find exactly the
known deviations of distribution 2.8, which proves it detects problems.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import fixtures
from tests.support.breaking_proxy import BreakingProxy
from tests.support.clients import (
    Buildah,
    Containerd,
    Docker,
    Podman,
    RegistryClient,
    Skopeo,
    skip_unless_installed,
)
from tests.support.fixtures import PUSHED_TAGS, PushedImage
from tests.support.images import OciImage
from tests.support.procs import (
    ProcessFailure,
    free_port,
    pids_referencing,
    start_server,
    tcp_accepts,
    wait_until,
)
from tests.support.reference_registry import DockerRegistry
from tests.support.registry_probe import (
    ACCEPT_VARIANTS,
    MALFORMED_DIGESTS,
    OCI_MANIFEST,
    Finding,
    check_malformed_digests,
    check_manifest,
    check_tls_hello,
    format_findings,
    probe_registry,
)

pytestmark = [pytest.mark.clients, pytest.mark.integration]

# The harness fixtures, bound explicitly in this module (a conftest importing
# them too is harmless: the nearest definition wins).
buildah_client = fixtures.buildah_client
busybox_image = fixtures.busybox_image
containerd_client = fixtures.containerd_client
docker_client = fixtures.docker_client
podman_client = fixtures.podman_client
reference_busybox = fixtures.reference_busybox
reference_registry = fixtures.reference_registry
registry_client = fixtures.registry_client
skopeo_client = fixtures.skopeo_client

ECHO = ["busybox", "echo", "hello"]


@pytest.mark.parametrize("tag", list(PUSHED_TAGS))
def test_client_pulls_and_runs(
    registry_client: RegistryClient,
    reference_busybox: PushedImage,
    tag: str,
    record_property: Callable[[str, object], None],
) -> None:
    output = registry_client.pull_and_run(
        reference_busybox.registry, f"{reference_busybox.repository}:{tag}", ECHO
    )
    assert output == "hello\n"
    timing = registry_client.last_timing
    assert timing.pull > 0.0
    record_property("pull_seconds", round(timing.pull, 3))
    record_property("run_seconds", round(timing.run, 3))
    print(f"\n{registry_client.name} {tag}: pull {timing.pull:.2f} s, run {timing.run:.2f} s")


def _manifest_requests(registry: DockerRegistry, repository: str) -> int:
    """Manifest requests in the registry's access log so far."""
    log = registry.log_path.read_text(errors="replace")
    return log.count(f"/v2/{repository}/manifests/")


def test_each_pull_is_a_real_pull(
    registry_client: RegistryClient,
    reference_registry: DockerRegistry,
    reference_busybox: PushedImage,
) -> None:
    """pull_and_run removes the local copy, so a second call asks the
    registry again instead of reusing a cache."""
    image = f"{reference_busybox.repository}:latest"
    assert registry_client.pull_and_run(reference_busybox.registry, image, ECHO) == "hello\n"
    before = _manifest_requests(reference_registry, reference_busybox.repository)
    sh = ["busybox", "sh", "-c", "echo $((6*7))"]
    assert registry_client.pull_and_run(reference_busybox.registry, image, sh) == "42\n"
    assert _manifest_requests(reference_registry, reference_busybox.repository) > before


def test_pull_from_a_dead_registry_fails_clearly(
    registry_client: RegistryClient, tmp_path: Path
) -> None:
    with pytest.raises(ProcessFailure) as failure:
        registry_client.pull_and_run(f"127.0.0.1:{free_port()}", "test/none:latest", ECHO)
    message = str(failure.value)
    assert "--- stderr ---" in message
    assert "127.0.0.1" in message


def test_docker_inspect_reports_the_pushed_digest(
    docker_client: Docker, reference_busybox: PushedImage, busybox_image: OciImage
) -> None:
    ref = reference_busybox.ref("latest")
    assert docker_client.pull(ref) == busybox_image.manifest_digest
    try:
        info = docker_client.inspect(ref)
        assert info["Config"]["Cmd"] == ["/bin/sh"]
        repo_digest = f"{reference_busybox.registry}/{reference_busybox.repository}@"
        assert f"{repo_digest}{busybox_image.manifest_digest}" in info["RepoDigests"]
        assert docker_client.run(ref, "busybox", "sh", "-c", "readlink /bin/sh") == "busybox\n"
    finally:
        docker_client.remove_image(ref)


def test_containerd_removes_content_with_the_image(
    containerd_client: Containerd, reference_busybox: PushedImage
) -> None:
    ref = reference_busybox.ref("index")
    containerd_client.pull(ref)
    assert ref in containerd_client.images()
    containerd_client.remove_image(ref)
    assert ref not in containerd_client.images()
    assert containerd_client.ctr("content", "ls", "-q").stdout.split() == []


def test_skopeo_inspect_and_raw(
    skopeo_client: Skopeo, reference_busybox: PushedImage, busybox_image: OciImage
) -> None:
    info = skopeo_client.inspect(reference_busybox.ref("latest"))
    assert info["Digest"] == busybox_image.manifest_digest
    assert sorted(info["RepoTags"]) == sorted(PUSHED_TAGS)
    raw = skopeo_client.inspect_raw(reference_busybox.ref("latest"))
    blob = busybox_image.layout / "blobs" / "sha256"
    assert raw == (blob / busybox_image.manifest_digest.removeprefix("sha256:")).read_bytes()
    assert json.loads(raw)["mediaType"] == OCI_MANIFEST
    v2s2 = json.loads(skopeo_client.inspect_raw(reference_busybox.ref("v2s2")))
    assert v2s2["mediaType"] == PUSHED_TAGS["v2s2"]
    index = json.loads(skopeo_client.inspect_raw(reference_busybox.ref("index")))
    assert [m["digest"] for m in index["manifests"]] == [busybox_image.manifest_digest]


def test_buildah_build_from_registry_image(
    buildah_client: Buildah, reference_busybox: PushedImage
) -> None:
    output = buildah_client.build_from(
        reference_busybox.registry, f"{reference_busybox.repository}:v2s2", ECHO
    )
    assert "hello" in output.splitlines()
    print(f"\nbuildah build FROM+RUN: {buildah_client.last_timing.run:.2f} s")


# The known deviations of distribution 2.8 from what clients.md requires:
# an OCI manifest or index asked for with only */* is "unknown" (404), a
# Docker schema 2 manifest asked for with only */* is rewritten to a signed
# schema 1 manifest, and a malformed manifest digest is a 500.
EXPECTED_DOCKER_REGISTRY_FINDINGS = {
    ("manifest", "/v2/test/busybox/manifests/latest [wildcard]", "GET status 404"),
    ("manifest", "/v2/test/busybox/manifests/index [wildcard]", "GET status 404"),
    (
        "manifest",
        "/v2/test/busybox/manifests/v2s2 [wildcard]",
        "GET Content-Type application/vnd.docker.distribution.manifest.v1+prettyjws",
    ),
    *(
        ("malformed-digest", f"{method} /v2/test/busybox/manifests/{digest}", "status 500")
        for digest in ("sha256:zzzz", "sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e")
        for method in ("GET", "HEAD")
    ),
}


def test_probe_finds_exactly_the_known_docker_registry_deviations(
    reference_registry: DockerRegistry, reference_busybox: PushedImage
) -> None:
    findings = probe_registry(
        reference_registry.url, reference_busybox.repository, list(PUSHED_TAGS)
    )
    assert {f.key for f in findings} == EXPECTED_DOCKER_REGISTRY_FINDINGS, format_findings(findings)
    assert len(findings) == len(EXPECTED_DOCKER_REGISTRY_FINDINGS)
    for finding in findings:
        assert isinstance(finding, Finding)
        if finding.check == "malformed-digest" and finding.subject.startswith("GET"):
            assert finding.detail == "errors UNKNOWN"


def test_probe_detects_a_tls_hang(tmp_path: Path) -> None:
    """A server that reads the ClientHello and never answers is a hang."""
    port_file = tmp_path / "port"
    script = (
        "import socket,sys,time\n"
        "s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n"
        f"open({str(port_file)!r},'w').write(str(s.getsockname()[1]))\n"
        "c,_=s.accept(); c.recv(4096); time.sleep(60)\n"
    )
    server = start_server("silent server", ["python3", "-c", script], tmp_path / "silent.log")
    try:
        wait_until(port_file.exists, server, what="listening")
        wait_until(lambda: port_file.read_text() != "", server, what="listening")
        port = int(port_file.read_text())
        started = time.monotonic()
        findings = check_tls_hello(f"http://127.0.0.1:{port}", timeout=1.0)
        assert time.monotonic() - started < 5.0
        assert [f.problem for f in findings] == ["hang"]
    finally:
        server.stop(grace=1.0)
    assert not server.alive()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A server whose child ignores SIGTERM: the group is SIGKILLed, all reaped."""
    marker = tmp_path / "group"
    marker.mkdir()
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    script = f"python3 -c '{stubborn}' {marker} & wait"
    server = start_server("group", ["sh", "-c", script], tmp_path / "group.log")
    wait_until(lambda: len(pids_referencing(marker)) == 2, server, what="forking its child")
    child_pids = pids_referencing(marker)
    started = time.monotonic()
    server.stop(grace=1.0)
    assert time.monotonic() - started < 10.0
    assert not server.alive()
    for pid in child_pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), pid
    assert pids_referencing(marker) == []


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def test_reference_registry_serves_only_loopback(reference_registry: DockerRegistry) -> None:
    assert tcp_accepts("127.0.0.1", reference_registry.port)
    listening = subprocess.run(
        ["ss", "-Htln", f"sport = :{reference_registry.port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listening.returncode == 0:
        assert listening.stdout.strip(), "ss shows no listener"
        for line in listening.stdout.splitlines():
            assert f"127.0.0.1:{reference_registry.port}" in line, line


# Each breakage of the proxy and the probe finding it must cause.
PROXY_BREAKAGE_FINDINGS = {
    "json-content-type": "GET Content-Type application/json",
    "head-zero-length": "HEAD Content-Length differs from GET body",
    "head-no-digest": "HEAD without Docker-Content-Digest",
    "head-404": "HEAD status 404",
    "digest-other-bytes": "bytes by digest differ from bytes by tag",
    "wrong-digest-header": "GET Docker-Content-Digest is not the body's sha256",
}


def test_probe_through_a_faithful_proxy_finds_what_it_finds_directly(
    reference_registry: DockerRegistry, reference_busybox: PushedImage
) -> None:
    with BreakingProxy(reference_registry.url) as proxy:
        findings = []
        for tag in PUSHED_TAGS:
            findings += check_manifest(proxy.url, reference_busybox.repository, tag)
        findings += check_malformed_digests(proxy.url, reference_busybox.repository)
    assert {f.key for f in findings} == EXPECTED_DOCKER_REGISTRY_FINDINGS, format_findings(findings)


@pytest.mark.parametrize("breakage", sorted(PROXY_BREAKAGE_FINDINGS))
def test_probe_detects_each_manifest_breakage(
    reference_registry: DockerRegistry, reference_busybox: PushedImage, breakage: str
) -> None:
    variants = {"containers-image": ACCEPT_VARIANTS["containers-image"]}
    with BreakingProxy(reference_registry.url, [breakage]) as proxy:
        findings = check_manifest(proxy.url, reference_busybox.repository, "latest", variants)
    assert PROXY_BREAKAGE_FINDINGS[breakage] in {f.problem for f in findings}, format_findings(
        findings
    )


def test_probe_detects_a_plain_text_error_body(
    reference_registry: DockerRegistry, reference_busybox: PushedImage
) -> None:
    with BreakingProxy(reference_registry.url, ["plain-error-body"]) as proxy:
        findings = check_malformed_digests(proxy.url, reference_busybox.repository)
    blob_findings = {f.key for f in findings if "/blobs/" in f.subject}
    assert blob_findings == {
        ("malformed-digest", f"GET /v2/test/busybox/blobs/{digest}", "error body is not spec JSON")
        for digest in MALFORMED_DIGESTS
    }, format_findings(findings)


def test_probe_flags_a_status_less_answer_to_tls(
    reference_registry: DockerRegistry,
) -> None:
    """Python's http.server takes a ClientHello for an HTTP/0.9 request and
    answers an HTML page without a status line: not the 400 required (Go's
    server, docker-registry, answers 400)."""
    assert check_tls_hello(reference_registry.url, timeout=2.0) == []
    with BreakingProxy(reference_registry.url) as proxy:
        findings = check_tls_hello(proxy.url, timeout=2.0)
    assert [f.problem for f in findings] == ["answered other than 400"], format_findings(findings)
    assert "DOCTYPE" in findings[0].detail


def _pids_running(argv: list[str]) -> list[int]:
    """PIDs (not zombies) whose command line is exactly ``argv``."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == wanted:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("kind", ["docker", "podman", "containerd"])
def test_close_stops_containers_left_running(
    kind: str, tmp_path: Path, reference_busybox: PushedImage
) -> None:
    """A test that leaves a container running still leaves nothing behind."""
    sleeper = ["busybox", "sleep", str(100000 + os.getpid() % 1000 * 100 + len(kind))]
    ref = reference_busybox.ref("latest")
    client: Docker | Podman | Containerd
    if kind == "docker":
        skip_unless_installed(*Docker.tools)
        client = Docker(tmp_path / kind).start()
    elif kind == "containerd":
        skip_unless_installed(*Containerd.tools)
        client = Containerd(tmp_path / kind).start()
    else:
        skip_unless_installed(*Podman.tools)
        client = Podman(tmp_path / kind)
    try:
        client.pull(ref)
        client.run(ref, *sleeper, detach=True)
        deadline = time.monotonic() + 30
        while not _pids_running(sleeper):
            assert time.monotonic() < deadline, "the detached container never started"
            time.sleep(0.1)
        assert client.leftovers(), "leftovers() does not see the running container's helpers"
    finally:
        client.close()
    assert client.leftovers() == []
    assert _pids_running(sleeper) == []


def test_skopeo_unpacks_with_tar_as_with_umoci(
    skopeo_client: Skopeo, reference_busybox: PushedImage, tmp_path: Path
) -> None:
    skip_unless_installed("umoci")
    layout = tmp_path / "layout"
    skopeo_client.pull_to_layout(reference_busybox.ref("index"), layout)
    by_umoci = skopeo_client.unpack(layout, "latest", tmp_path / "umoci", use_umoci=True)
    by_tar = skopeo_client.unpack(layout, "latest", tmp_path / "tar", use_umoci=False)
    for rootfs in (by_umoci, by_tar):
        assert sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("*")) == [
            "bin",
            "bin/busybox",
            "bin/sh",
        ]
        assert (rootfs / "bin" / "sh").readlink() == Path("busybox")
        assert (rootfs / "bin" / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
        assert skopeo_client.chroot_run(rootfs, ["sh", "-c", "echo hello"]) == "hello\n"
