"""Benchmark: function cold start, process start to the first answered ``/v2/``.

Usage::

    python benchmarks/cold_start.py [--runs 5] [--no-gcp]

Each function (``manifest``, ``blob``) is started as Cloud Functions starts
it, ``functions-framework --target T --source functions/T/main.py``, and
``/v2/`` is polled every 10 ms from the moment the process is spawned until
it answers (the manifest function with 200, the blob function with its spec
404: ``/v2/`` is not its route). Two configurations: embedded (filesystem blobs, SQLite, local
builder) and Google Cloud (GCS, Firestore and the Cloud Run launcher, the
environment ``tests/support/serverless.py`` sets, with fake-gcs-server and
Google's Firestore emulator running). The reference is the floor:
functions-framework serving a function that only answers "ok". The table
gives the median and the slowest of ``--runs`` starts, interleaved with the
floor's. Target: at most 1 s.

The Google client libraries load on a thread the first request starts
(:mod:`registry.lazy`), so a second column says when the function first
answers a request that needs its backend: right after ``/v2/``, a manifest GET
(or a blob HEAD) of an unknown digest, whose 404 comes from the metadata store
(or the blob store). That is what a client's first real request meets.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, TEST_PKGS, median, table
from tests.support.functions import serve_function
from tests.support.procs import free_port

FLOOR = """import functions_framework


@functions_framework.http
def floor(request):
    return "ok"
"""


UNKNOWN = "sha256:" + "0" * 64
BACKEND_PROBE = {
    "manifest": ("GET", f"/v2/bench/manifests/{UNKNOWN}"),
    "blob": ("HEAD", f"/v2/bench/blobs/{UNKNOWN}"),
}


def cold_start(
    target: str, source: Path, env: Mapping[str, str], log: Path
) -> tuple[float, float | None]:
    """Seconds from spawn to the first ``/v2/`` answer, and to the first
    answer from the backend (None for the floor, which has none)."""
    port = free_port()
    started = time.monotonic()
    process = serve_function(target, target, source, port, log, env=env)
    try:
        first = time.monotonic() - started
        if target not in BACKEND_PROBE:
            return first, None
        method, path = BACKEND_PROBE[target]
        answer = requests.request(method, f"http://127.0.0.1:{port}{path}", timeout=60)
        if answer.status_code != 404:
            raise RuntimeError(f"{target}: {method} {path} answered {answer.status_code}")
        return first, time.monotonic() - started
    finally:
        process.stop()


@contextlib.contextmanager
def gcp_environment(root: Path) -> Iterator[dict[str, str]]:
    from tests.support.firestore_emulator import start_emulator
    from tests.support.gcs_emulator import start_gcs_emulator
    from tests.support.service_account import make_key

    gcs = start_gcs_emulator(root / "gcs")
    firestore = start_emulator(root / "firestore")
    try:
        key_file = make_key("nixery-blob").write(root / "blob-signer.json")
        yield {
            **gcs.env(),
            **firestore.env,
            "NIXERY_STORAGE_BACKEND": "gcs",
            "NIXERY_METADATA_BACKEND": "firestore",
            "NIXERY_FIRESTORE_PREFIX": "bench-",
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
            "NIXERY_LAUNCHER": "cloudrun",
            "NIXERY_BUILDER_JOB": "projects/nixery-bench/locations/europe-west1/jobs/builder",
            "NIXERY_CLOUD_RUN_ENDPOINT": "http://127.0.0.1:9",  # never reached by /v2/
        }
    finally:
        firestore.stop()
        gcs.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-gcp", action="store_true", help="embedded configuration only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as temp:
        root = Path(temp)
        floor = root / "floor" / "main.py"
        floor.parent.mkdir()
        floor.write_text(FLOOR)
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")},
            "NIXERY_PKGS_PATH": str(TEST_PKGS),
            "STORAGE_PATH": str(root / "storage"),
            "NIXERY_WORK_DIR": str(root / "work"),
        }
        configs: dict[str, dict[str, str]] = {"embedded": base}
        with contextlib.ExitStack() as stack:
            if not args.no_gcp:
                configs["gcp"] = {**base, **stack.enter_context(gcp_environment(root))}
            times: dict[tuple[str, str], list[float]] = {}
            backend: dict[tuple[str, str], list[float]] = {}
            for run in range(args.runs):
                times.setdefault(("floor", "floor"), []).append(
                    cold_start("floor", floor, base, root / "floor.log")[0]
                )
                for config, env in configs.items():
                    for target in ("manifest", "blob"):
                        source = ROOT / "functions" / target / "main.py"
                        seconds, ready = cold_start(
                            target, source, env, root / f"{target}-{run}.log"
                        )
                        times.setdefault((config, target), []).append(seconds)
                        if ready is not None:
                            backend.setdefault((config, target), []).append(ready)
    floor_s = median(times[("floor", "floor")])
    rows = [
        [
            config,
            target,
            f"{median(values):.3f}",
            f"{max(values):.3f}",
            f"{median(values) - floor_s:+.3f}",
            "yes" if median(values) <= 1.0 else "no",
            f"{median(backend[(config, target)]):.3f}" if (config, target) in backend else "",
        ]
        for (config, target), values in times.items()
    ]
    print(
        f"Function cold start, process spawn to first answer on /v2/, {args.runs} runs, "
        f"{os.cpu_count()} cores; floor = functions-framework with a function answering 'ok'"
    )
    print(
        table(
            [
                "config",
                "function",
                "median s",
                "slowest s",
                "over the floor s",
                "median <= 1 s",
                "first backend answer s",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
