"""Benchmark: blob redirect latency of the GCS and S3 adapters, cold vs warm.

Usage::

    python benchmarks/blob_redirect.py [--blobs 200] [--warm-rounds 5] [--backends gcs,s3]

For each backend its local stand-in is started (fake-gcs-server; moto's S3
server), ``--blobs`` small blobs are stored through the adapter by this
process, and the blob function is started as Cloud Functions runs it
(functions-framework on ``functions/blob/main.py``, GCS URLs signed with a
service-account key file, S3 URLs presigned with SigV4). One keep-alive
connection then sends, one after the other:

- ``/v2/`` (the floor: the function's own spec 404, no store involved),
- cold: ``GET /v2/bench/blobs/<digest>`` once per blob (the function has seen
  none of them: a size lookup at the stand-in, then a URL signed),
- warm: the same requests ``--warm-rounds`` times more (size and signed URL
  from the function's caches).

Every blob answer must be a 307 with a ``Location``. The table gives the
median and p99 latency of each, and warm's speed-up over cold.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, TEST_PKGS, median, percentile, table
from tests.support.functions import serve_function
from tests.support.procs import ServerProcess, free_port


@contextlib.contextmanager
def gcs_backend(root: Path) -> Iterator[dict[str, str]]:
    from tests.support.gcs_emulator import start_gcs_emulator
    from tests.support.service_account import make_key

    gcs = start_gcs_emulator(root / "gcs")
    try:
        key_file = make_key("nixery-blob").write(root / "blob-signer.json")
        yield {
            **gcs.env(),
            "NIXERY_STORAGE_BACKEND": "gcs",
            "NIXERY_METADATA_BACKEND": "firestore",  # as deployed; the blob function never reads it
            "GOOGLE_CLOUD_PROJECT": "nixery-bench",
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        }
    finally:
        gcs.stop()


@contextlib.contextmanager
def s3_backend(root: Path) -> Iterator[dict[str, str]]:
    from tests.support.moto_server import start_moto

    moto = start_moto(root / "moto")
    try:
        yield moto.env(moto.new_bucket())
    finally:
        moto.stop()


BACKENDS = {"gcs": gcs_backend, "s3": s3_backend}


def store_blobs(env: Mapping[str, str], count: int) -> list[str]:
    """Store ``count`` distinct small blobs through the adapter; their digests."""
    from registry import wiring
    from registry.settings import Settings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        store = wiring.blob_store(Settings.from_env(dict(os.environ)))
        digests = []
        for index in range(count):
            data = f"benchmark blob {index}\n".encode() * 64
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            store.put_bytes(digest, data, "application/octet-stream")
            digests.append(digest)
        return digests
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_blob_function(env: Mapping[str, str], log: Path) -> tuple[ServerProcess, int]:
    port = free_port()
    process = serve_function(
        "blob function", "blob", ROOT / "functions" / "blob" / "main.py", port, log, env=env
    )
    return process, port


def timed_get(connection: http.client.HTTPConnection, path: str, status: int) -> float:
    start = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - start
    if response.status != status or (status == 307 and not response.getheader("Location")):
        raise RuntimeError(f"GET {path}: {response.status}, expected {status}")
    return elapsed * 1000


def measure(port: int, digests: Sequence[str], warm_rounds: int) -> dict[str, list[float]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        floor = [timed_get(connection, "/v2/", 404) for _ in range(len(digests))]
        paths = [f"/v2/bench/blobs/{digest}" for digest in digests]
        cold = [timed_get(connection, path, 307) for path in paths]
        warm = [timed_get(connection, path, 307) for _ in range(warm_rounds) for path in paths]
    finally:
        connection.close()
    return {"floor (/v2/)": floor, "cold": cold, "warm": warm}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--blobs", type=int, default=200)
    parser.add_argument("--warm-rounds", type=int, default=5)
    parser.add_argument("--backends", default="gcs,s3")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-blobs-") as temp:
        root = Path(temp)
        for backend in args.backends.split(","):
            with BACKENDS[backend](root / backend) as backend_env:
                env = {
                    **{k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")},
                    "NIXERY_PKGS_PATH": str(TEST_PKGS),
                    "NIXERY_WORK_DIR": str(root / backend / "work"),
                    **backend_env,
                }
                digests = store_blobs(env, args.blobs)
                process, port = start_blob_function(env, root / backend / "function.log")
                try:
                    results = measure(port, digests, args.warm_rounds)
                finally:
                    process.stop()
            cold_median = median(results["cold"])
            for kind, values in results.items():
                rows.append(
                    [
                        backend,
                        kind,
                        len(values),
                        f"{median(values):.2f}",
                        f"{percentile(values, 0.99):.2f}",
                        f"{cold_median / median(values):.1f}x" if kind == "warm" else "",
                    ]
                )
    print(
        f"Blob redirect latency (307 to a signed URL) through the blob function, one keep-alive "
        f"connection, {os.cpu_count()} cores, ms"
    )
    print(
        table(
            ["backend", "requests", "count", "median ms", "p99 ms", "warm vs cold (median)"], rows
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
