"""The ``nixery`` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.nix, pytest.mark.integration]

NIXERY = str(Path(sys.executable).parent / "nixery")


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")}
    return subprocess.run(
        [NIXERY, *args], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_build_writes_an_oci_layout(nix: None, pkgs_path: Path, tmp_path: Path) -> None:
    env = {
        "NIXERY_PKGS_PATH": str(pkgs_path),
        "STORAGE_PATH": str(tmp_path / "storage"),
        "NIXERY_WORK_DIR": str(tmp_path / "work"),
    }
    result = run(["build", "shell/hello", "--oci-layout", str(tmp_path / "out")], env, tmp_path)
    assert result.returncode == 0, result.stderr
    layout = tmp_path / "out"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert digest in result.stdout
    manifest = json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = layout / "blobs" / "sha256" / descriptor["digest"].split(":")[1]
        assert blob.stat().st_size == descriptor["size"]

    # umoci (a real OCI tool) unpacks it and the image's hello runs in a chroot.
    if subprocess.run(["which", "umoci"], capture_output=True).returncode == 0:
        bundle = tmp_path / "bundle"
        subprocess.run(
            ["umoci", "raw", "unpack", "--image", f"{layout}:latest", str(bundle)],
            check=True,
            capture_output=True,
        )
        hello = subprocess.run(
            ["chroot", str(bundle), "/bin/hello"], capture_output=True, text=True, check=True
        )
        assert hello.stdout.strip() == "Hello, world!"

    again = run(["build", "hello/shell", "--oci-layout", str(tmp_path / "out2")], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert digest in again.stdout  # same packages, same image, from cache


def test_build_failure_is_one_clear_line(nix: None, pkgs_path: Path, tmp_path: Path) -> None:
    env = {
        "NIXERY_PKGS_PATH": str(pkgs_path),
        "STORAGE_PATH": str(tmp_path / "storage"),
        "NIXERY_WORK_DIR": str(tmp_path / "work"),
    }
    result = run(["build", "hello/nosuch", "--oci-layout", str(tmp_path / "o")], env, tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("nixery: ") and "nosuch" in last


def test_configuration_problems_are_all_named(tmp_path: Path) -> None:
    env = {
        "NIXERY_PKGS_PATH": str(tmp_path / "missing"),
        "NIXERY_CHANNEL": "nixos-unstable",
        "NIX_TIMEOUT": "soon",
        "NIXERY_STORAGE_BACKEND": "floppy",
    }
    result = run(["serve", "--port", "1"], env, tmp_path)
    assert result.returncode == 2
    for word in ("NIXERY_CHANNEL and NIXERY_PKGS_PATH", "NIX_TIMEOUT", "NIXERY_STORAGE_BACKEND"):
        assert word in result.stderr


def test_help_has_examples() -> None:
    for command in ("serve", "build"):
        result = subprocess.run([NIXERY, command, "--help"], capture_output=True, text=True)
        assert result.returncode == 0
        assert "examples:" in result.stdout
