"""``nixery prebuild`` against a deployment: one Cloud Run execution, tasks split.

The deployment is the serverless stack on real local stand-ins (Firestore
emulator, fake-gcs-server, the Cloud Run Admin API fake whose tasks run the
real builder with real Nix, both functions behind the URL-map proxy). The
command gets the deployment's settings as a file (``--deployment``), as an
operator would write it from Terraform's outputs.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from launcher.port import BATCH_VARIABLE, BuildBatch
from tests.conftest import OFFLINE_NIX_CONFIG, PKGS
from tests.support.firestore_emulator import FirestoreEmulator, session_emulator
from tests.support.gcs_emulator import GcsEmulator, start_gcs_emulator
from tests.support.serverless import ServerlessStack, start_serverless

pytestmark = [pytest.mark.nix, pytest.mark.integration]

NIXERY = str(Path(sys.executable).parent / "nixery")
FIVE = ["hello", "foo", "foobar", "sdl2", "7zz:latest"]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def stack(
    nix: None, tmp_path: Path, gcs: GcsEmulator, request: pytest.FixtureRequest
) -> Iterator[ServerlessStack]:
    firestore: FirestoreEmulator = session_emulator(request)
    started = start_serverless(tmp_path / "stack", gcs=gcs, firestore=firestore, pkgs_path=PKGS)
    try:
        yield started
    finally:
        started.stop()


def deployment_file(stack: ServerlessStack, path: Path) -> Path:
    """The deployment's own settings (what its functions run with), nothing else."""
    names = [k for k in stack.env if k.startswith(("NIXERY_", "GCS_", "GOOGLE_", "STORAGE_"))]
    names += [k for k in stack.env if k.startswith("FIRESTORE_") or k == "NIX_POPULARITY_URL"]
    path.write_text("".join(f"export {k}={shlex.quote(stack.env[k])}\n" for k in sorted(names)))
    return path


def prebuild(deployment: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {  # nothing of the deployment leaks in except through the file
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "NIX_CONFIG": OFFLINE_NIX_CONFIG,
    }
    return subprocess.run(
        [NIXERY, "prebuild", "--deployment", str(deployment), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_one_execution_whose_tasks_split_the_list(stack: ServerlessStack, tmp_path: Path) -> None:
    deployment = deployment_file(stack, tmp_path / "deployment.env")
    first = prebuild(deployment, *FIVE, "--tasks", "2", "--json")
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)
    assert {row["image"]: row["result"] for row in rows} == dict.fromkeys(
        ["hello:latest", "foo:latest", "foobar:latest", "sdl2:latest", "7zz:latest"], "built"
    )
    assert stack.cloud_run.run_count == 1
    run = stack.cloud_run.runs[0]
    assert run.task_count == 2
    assert f"started {run.execution}" in first.stderr
    assert "NIXERY_BUILD_REQUEST" not in run.env
    batch = BuildBatch.from_env(run.env[BATCH_VARIABLE])
    assert sorted(r.build_id for r in batch.requests) == sorted(row["build"] for row in rows)
    assert stack.cloud_run.wait_for_tasks() == [0, 0]
    tasks = sorted(run.tasks, key=lambda t: t.index)
    assert [(t.env["CLOUD_RUN_TASK_INDEX"], t.env["CLOUD_RUN_TASK_COUNT"]) for t in tasks] == [
        ("0", "2"),
        ("1", "2"),
    ]
    for task in tasks:
        share = batch.share(task.index, 2)
        ids = " ".join(r.build_id for r in share)
        log = task.log_path.read_text()
        assert f"task {task.index} of 2: {len(share)} of 5 builds: {ids}" in log
    assert len(stack.nix_builds()) == 5  # each image built once, by its task

    again = prebuild(deployment, *FIVE, "--tasks", "2")
    assert again.returncode == 0, again.stderr
    assert "5 images: 0 built, 5 already cached, 0 failed" in again.stdout
    assert stack.cloud_run.run_count == 1

    # A pull is now a cache hit: no job runs.
    pulled = requests.get(f"{stack.url}/v2/sdl2/manifests/latest", timeout=60)
    assert pulled.status_code == 200
    assert stack.cloud_run.run_count == 1
    assert len(stack.nix_builds()) == 5
