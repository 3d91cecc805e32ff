"""The whole serverless registry on this machine, every piece a real process
or server: the manifest and blob functions under functions-framework (as
Cloud Functions runs them), Google's Firestore emulator, fake-gcs-server,
the Cloud Run Admin API fake whose job tasks run the real builder with real
Nix, and a front proxy standing in for the load balancer's URL map.

:func:`start_serverless` wires them with the same environment variables
Terraform sets in the cloud; each stack gets its own bucket and Firestore
collection prefix, so stacks never see each other's data.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.fake_cloud_run import DEFAULT_JOB, FakeCloudRun, start_fake_cloud_run
from tests.support.firestore_emulator import FirestoreEmulator
from tests.support.front_proxy import FrontProxy, start_front_proxy
from tests.support.functions import serve_function
from tests.support.gcs_emulator import GcsEmulator
from tests.support.nixery_server import make_nix_shims
from tests.support.procs import ServerProcess, free_port
from tests.support.service_account import ServiceAccountKey, make_key

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FunctionProcess:
    target: str
    process: ServerProcess
    port: int
    cold_start_s: float  # process start to first answered /v2/

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def start_function(target: str, env: Mapping[str, str], log: Path) -> FunctionProcess:
    """Run one function as Cloud Functions does: functions-framework on its
    ``main.py``; wait until ``/v2/`` answers."""
    port = free_port()
    started = time.monotonic()
    process = serve_function(
        f"{target} function", target, REPO / "functions" / target / "main.py", port, log, env=env
    )
    return FunctionProcess(target, process, port, time.monotonic() - started)


@dataclass
class ServerlessStack:
    front: FrontProxy
    manifest_functions: list[FunctionProcess]
    blob_function: FunctionProcess
    cloud_run: FakeCloudRun
    gcs: GcsEmulator
    bucket: str
    firestore: FirestoreEmulator
    prefix: str
    key: ServiceAccountKey
    nix_log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.front.url

    @property
    def host(self) -> str:
        return self.front.host

    def nix_builds(self) -> list[str]:
        try:
            calls = self.nix_log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [c for c in calls if c.startswith("nix-store --realise")]

    def stop(self) -> None:
        self.front.stop()
        for function in [*self.manifest_functions, self.blob_function]:
            function.process.stop()
        self.cloud_run.stop()


def start_serverless(
    root: Path,
    *,
    gcs: GcsEmulator,
    firestore: FirestoreEmulator,
    pkgs_path: Path,
    manifest_processes: int = 1,
    extra_env: Mapping[str, str] | None = None,
) -> ServerlessStack:
    root.mkdir(parents=True, exist_ok=True)
    bucket = gcs.new_bucket()
    prefix = f"t{secrets.token_hex(4)}-"
    key = make_key("nixery-blob")
    key_file = key.write(root / "blob-signer.json")
    shims, nix_log = root / "nix-shims", root / "nix-calls.log"
    make_nix_shims(shims, nix_log)
    common = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")},
        **gcs.env(),
        **firestore.env,
        "PATH": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "NIXERY_PKGS_PATH": str(pkgs_path),
        "NIXERY_STORAGE_BACKEND": "gcs",
        "GCS_BUCKET": bucket,
        "NIXERY_METADATA_BACKEND": "firestore",
        "NIXERY_FIRESTORE_PREFIX": prefix,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "NIXERY_WORK_DIR": str(root / "work"),
        **(extra_env or {}),
    }
    cloud_run = start_fake_cloud_run(root / "job-logs", base_env=common)
    function_env = {
        **common,
        "NIXERY_LAUNCHER": "cloudrun",
        "NIXERY_BUILDER_JOB": DEFAULT_JOB,
        "NIXERY_CLOUD_RUN_ENDPOINT": cloud_run.endpoint,
    }
    started: list[FunctionProcess] = []
    try:
        for index in range(manifest_processes):
            started.append(start_function("manifest", function_env, root / f"manifest-{index}.log"))
        blob = start_function("blob", function_env, root / "blob.log")
    except BaseException:
        for function in started:
            function.process.stop()
        cloud_run.stop()
        raise
    front = start_front_proxy([f.host for f in started], [blob.host])
    return ServerlessStack(
        front=front,
        manifest_functions=started,
        blob_function=blob,
        cloud_run=cloud_run,
        gcs=gcs,
        bucket=bucket,
        firestore=firestore,
        prefix=prefix,
        key=key,
        nix_log=nix_log,
        env=function_env,
    )
