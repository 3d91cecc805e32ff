"""builder_job/Dockerfile and its Cloud Build configuration, checked as text.

``docker build`` cannot run here (no registry to pull the base from), and no
Dockerfile linter is installed; what can be checked without building is
checked: the base is pinned by digest, the entry point is the builder, Nix and
git are installed, the process runs as a non-root user that owns the Nix
store, no package source is baked in, everything copied exists, and the
Cloud Build configuration builds this file and pushes the image without
touching a secret.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "builder_job" / "Dockerfile"
CLOUDBUILD = REPO / "builder_job" / "cloudbuild.yaml"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_every_base_is_pinned_by_digest(steps: list[tuple[str, str]]) -> None:
    bases = [args.split()[0] for keyword, args in steps if keyword == "FROM"]
    assert bases, "no FROM"
    for base in bases:
        assert re.fullmatch(r"[a-z0-9./-]+(:[\w.-]+)?@sha256:[0-9a-f]{64}", base), base
    # How to refresh the pin is written next to it.
    assert "imagetools inspect" in DOCKERFILE.read_text()


def test_the_entry_point_is_the_builder(steps: list[tuple[str, str]]) -> None:
    entrypoints = [args for keyword, args in steps if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", "builder_job"]
    assert not [args for keyword, args in steps if keyword == "CMD"]


def test_it_runs_as_a_non_root_user_owning_the_store(steps: list[tuple[str, str]]) -> None:
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    user = users[-1].split(":")[0]
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert re.search(rf"useradd\b[^&]*\b{user}\b", runs)
    assert f"chown -R {user}:{user} /nix" in runs
    # Single-user Nix without build users: no sandbox (it needs them).
    assert "'build-users-group ='" in runs and "'sandbox = false'" in runs


def test_nix_git_and_python_are_installed(steps: list[tuple[str, str]]) -> None:
    runs = [args for keyword, args in steps if keyword == "RUN"]
    apt = next(r for r in runs if "apt-get install" in r)
    packages = set(shlex.split(apt.split("apt-get install", 1)[1].split("&&")[0]))
    assert {"nix-bin", "git", "openssh-client", "python3", "python3-venv"} <= packages
    assert any("pip install" in r and "[gcp]" in r for r in runs)


def test_no_package_source_is_baked_in(steps: list[tuple[str, str]]) -> None:
    """The job's environment (Terraform) chooses the package set, the same
    one the functions read; a second source in the image would be refused
    by the settings ("set only one package source")."""
    baked = " ".join(args for keyword, args in steps if keyword in ("ENV", "ARG"))
    for name in ("NIXERY_CHANNEL", "NIXERY_PKGS_REPO", "NIXERY_PKGS_PATH"):
        assert name not in baked


def test_everything_copied_exists_and_the_package_builds_from_it(
    steps: list[tuple[str, str]],
) -> None:
    copies = [args.split() for keyword, args in steps if keyword == "COPY"]
    assert copies
    for args in copies:
        for source in args[:-1]:
            assert (REPO / source).exists(), source
    copied = {source for args in copies for source in args[:-1]}
    # The wheel's packages (pyproject) all come from what is copied.
    pyproject = (REPO / "pyproject.toml").read_text()
    listed = re.search(
        r"\[tool\.hatch\.build\.targets\.wheel\]\npackages = \[(.*?)\]", pyproject, re.S
    )
    assert listed
    for package in re.findall(r'"([^"]+)"', listed.group(1)):
        assert package.split("/")[0] in copied, package
    assert {"pyproject.toml", "README.md"} <= copied  # hatchling reads the readme


def test_cloud_build_builds_this_dockerfile_and_pushes_it() -> None:
    config: dict[str, Any] = yaml.safe_load(CLOUDBUILD.read_text())
    (step,) = config["steps"]
    assert step["name"] == "gcr.io/cloud-builders/docker"
    assert step["args"][0] == "build"
    assert "--file=builder_job/Dockerfile" in step["args"]
    tag = next(a.split("=", 1)[1] for a in step["args"] if a.startswith("--tag="))
    assert tag == "${_REPOSITORY}/builder:${_TAG}"
    assert config["images"] == [tag]  # pushed, and its digest recorded by Cloud Build
    assert step["args"][-1] == "."
    # No secret anywhere near the build.
    assert "availableSecrets" not in config and "secretEnv" not in step
