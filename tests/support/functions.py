"""One HTTP function served as Cloud Functions serves it, for tests and benchmarks.

Cloud Functions runs ``functions-framework --target NAME --source main.py``; the tests
and the cold-start benchmark do the same on 127.0.0.1 and call the function ready when
``/v2/`` answers. `UNREACHED_GCP_ENV` is the smallest Google Cloud configuration a
function imports and answers ``/v2/`` with: its backends point at a closed port, which
is fine because the adapters contact nothing until a request needs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.procs import ServerProcess, http_ok, start_server, wait_until

FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"

UNREACHED_GCP_ENV = {
    "NIXERY_STORAGE_BACKEND": "gcs",
    "GCS_BUCKET": "bucket",
    "GOOGLE_CLOUD_PROJECT": "nixery-test",
    "NIXERY_LAUNCHER": "cloudrun",
    "NIXERY_BUILDER_JOB": "projects/nixery-test/locations/europe-west1/jobs/nixery-builder",
    "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
}


def serve_function(
    name: str,
    target: str,
    source: str | os.PathLike[str],
    port: int,
    log: Path,
    *,
    env: Mapping[str, str],
    command: Sequence[str | os.PathLike[str]] = (FUNCTIONS_FRAMEWORK,),
    cwd: Path | None = None,
    interval: float = 0.01,
) -> ServerProcess:
    """Start `command` (functions-framework) serving `target` from `source` on `port`,
    and return once ``/v2/`` answers; the process is stopped if it never does."""
    process = start_server(
        name,
        [
            *command,
            "--target",
            target,
            "--source",
            source,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        log,
        env=env,
        cwd=cwd,
    )
    try:
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{port}/v2/"),
            process,
            what="answering /v2/",
            timeout=60,
            interval=interval,
        )
    except BaseException:
        process.stop()
        raise
    return process
