"""What the built images hold, and that building is deterministic and
reuses layers. Real Nix, the registry as a process."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PKGS
from tests.support.nixery_server import NixeryServer, start_nixery

pytestmark = [pytest.mark.nix, pytest.mark.integration]


def pull(registry: NixeryServer, name: str) -> tuple[dict[str, Any], dict[str, Any], list[bytes]]:
    """Manifest, config and the uncompressed layer tars of ``name``."""
    response = registry.get(f"/v2/{name}/manifests/latest")
    assert response.status_code == 200, response.text
    manifest = response.json()
    config = registry.get(f"/v2/{name}/blobs/{manifest['config']['digest']}").json()
    layers = [
        gzip.decompress(registry.get(f"/v2/{name}/blobs/{layer['digest']}").content)
        for layer in manifest["layers"]
    ]
    return manifest, config, layers


def members(layer: bytes) -> list[tarfile.TarInfo]:
    return tarfile.open(fileobj=io.BytesIO(layer)).getmembers()


def test_image_layout_and_config(registry: NixeryServer) -> None:
    _, config, layers = pull(registry, "shell/hello")
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["config"]["Cmd"] == ["bash"]
    env = dict(e.split("=", 1) for e in config["config"]["Env"])
    assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-bundle.crt"
    assert "/bin" in env["PATH"].split(":")
    assert len(config["rootfs"]["diff_ids"]) == len(layers)

    for layer in layers[:-1]:  # store-path layers
        entries = members(layer)
        assert [m.name for m in entries[:2]] == ["nix", "nix/store"]
        assert all(m.isdir() for m in entries[:2])
        assert all(m.name.startswith("nix/store/") for m in entries[2:])
        assert all(m.uid == 0 and m.gid == 0 and m.mtime == 1 for m in entries)
        assert not any(m.islnk() for m in entries)  # hard links written as files
        store_paths = [m.name for m in entries if m.name.count("/") == 2]
        assert store_paths == sorted(store_paths)

    custom = {m.name: m for m in members(layers[-1])}
    assert custom["bin"].isdir()
    assert custom["bin/hello"].issym() and custom["bin/hello"].linkname.endswith("/bin/hello")
    assert custom["usr/bin/env"].issym() and "coreutils" in custom["usr/bin/env"].linkname
    assert custom["tmp"].isdir() and custom["tmp"].mode == 0o1777
    assert custom["etc/ssl"].issym() or custom["etc/ssl"].isdir()

    # Every store path of the closure is in exactly one layer.
    seen: list[str] = []
    for layer in layers[:-1]:
        seen += [m.name for m in members(layer) if m.name.count("/") == 2]
    assert len(seen) == len(set(seen))


def test_identical_input_gives_identical_bytes(registry: NixeryServer, tmp_path: Path) -> None:
    first = registry.get("/v2/shell/foo/manifests/latest")
    other = start_nixery(tmp_path / "other", {"NIXERY_PKGS_PATH": str(PKGS)})
    try:
        second = other.get("/v2/foo/shell/manifests/latest")
        oci_a = registry.get(
            "/v2/shell/foo/manifests/latest",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        oci_b = other.get(
            "/v2/shell/foo/manifests/latest",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    finally:
        other.stop()
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert oci_a.content == oci_b.content


def test_layers_are_packed_once_and_shared(registry: NixeryServer) -> None:
    hello, _, _ = pull(registry, "shell/hello")
    foo, _, _ = pull(registry, "shell/foo")
    shared = {layer["digest"] for layer in hello["layers"]} & {
        layer["digest"] for layer in foo["layers"]
    }
    assert shared, "two shell images share their base layers"
    db = sqlite3.connect(registry.root / "storage" / "metadata.sqlite3")
    rows = db.execute("SELECT image, timings FROM builds ORDER BY created_at").fetchall()
    db.close()
    timings = {image: json.loads(t) for image, t in rows}
    assert timings["shell/hello:latest"]["layers_reused"] == 0
    assert timings["shell/foo:latest"]["layers_reused"] >= len(shared) - 1
    # The shared layers come first in both manifests (a common prefix).
    prefix = 0
    for a, b in zip(hello["layers"], foo["layers"], strict=False):
        if a["digest"] != b["digest"]:
            break
        prefix += 1
    assert prefix >= 1


def test_large_package_cold_and_warm(registry: NixeryServer) -> None:
    start = time.monotonic()
    manifest, _, _ = pull(registry, "large")
    cold = time.monotonic() - start
    total = sum(layer["size"] for layer in manifest["layers"])
    assert total > 60 * 1024 * 1024 * 0.3  # the 64 MiB payload is in there (compressed)
    start = time.monotonic()
    again = registry.get("/v2/large/manifests/latest")
    warm = time.monotonic() - start
    assert again.status_code == 200
    size = f"{total / 2**20:.1f} MiB compressed"
    print(f"\nlarge: cold pull {cold:.2f} s ({size}), warm manifest {warm:.4f} s")
