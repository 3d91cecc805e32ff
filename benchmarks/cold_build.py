"""Benchmark: cold build overhead, a manifest request vs packing its layers alone.

Usage::

    python benchmarks/cold_build.py [--mib 200] [--rounds 3]

The test package set's ``large`` package (``--mib`` MiB of executables) is
realised with Nix first, so no build runs during the measurement. Each round
then starts ``nixery serve`` on fresh, empty storage and times one
``GET /v2/large/manifests/latest`` from request to response: the builder
process starts, Nix evaluates and finds the closure already there, the
layers are planned, packed and stored, the image is recorded, and the
waiting request notices. The reference, timed in the same round: packing the
same closure alone (:func:`builder_job.tarlayer.pack_layer` of every store
path into one scratch file, in a fresh process). The table gives medians
and, from the build record's stage timings, where the rest went. Target: the
request at most 1.5x packing alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import NIX_CONFIG, ROOT, TEST_PKGS, median, nix_env, realise, table
from tests.support.nixery_server import start_nixery

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
PACK_ALONE = """
import sys, tempfile, os
sys.path[:0] = [{shared!r}, {root!r}]
from builder_job.tarlayer import pack_layer
fd, name = tempfile.mkstemp(dir=sys.argv[1])
with os.fdopen(fd, "wb") as handle:
    pack_layer(handle, sys.argv[2:])
os.unlink(name)
"""


def closure(path: str) -> list[str]:
    result = subprocess.run(
        ["nix-store", "--query", "--requisites", path],
        env=nix_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def pack_alone(paths: Sequence[str], scratch: Path) -> float:
    code = PACK_ALONE.format(shared=str(ROOT / "shared"), root=str(ROOT))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(scratch), *paths], check=True)
    return time.perf_counter() - start


def one_request(root: Path, large_mib: int) -> tuple[float, dict[str, float]]:
    env = {"NIXERY_PKGS_PATH": str(TEST_PKGS), "NIXERY_TEST_LARGE_MIB": str(large_mib)}
    server = start_nixery(root, env)
    try:
        start = time.perf_counter()
        response = server.get("/v2/large/manifests/latest", headers={"Accept": DOCKER_V2})
        seconds = time.perf_counter() - start
        response.raise_for_status()
    finally:
        server.stop()
    from metastore.sqlite import SqliteMetadataStore

    store = SqliteMetadataStore(root / "storage" / "metadata.sqlite3")
    (build,) = store.recent_builds(1)
    timings = dict(build.timings)
    timings["builder wall"] = (build.finished_at or build.updated_at) - build.created_at
    return seconds, timings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=200, help="size of the large package")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("NIX_CONFIG", NIX_CONFIG)
    (large,) = realise(["large"], args.mib)
    paths = closure(large)
    size = sum(int(p) for p in _nar_sizes(paths))
    requests: list[float] = []
    packing: list[float] = []
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-build-") as temp:
        for round_index in range(args.rounds):
            packing.append(pack_alone(paths, Path(temp)))
            seconds, timings = one_request(Path(temp) / f"round-{round_index}", args.mib)
            requests.append(seconds)
            for stage, value in timings.items():
                stages.setdefault(stage, []).append(value)
            print(
                f"round {round_index}: request {seconds:.2f} s, packing alone "
                f"{packing[-1]:.2f} s, {json.dumps(timings)}",
                file=sys.stderr,
            )
    request_s, packing_s = median(requests), median(packing)
    rows = [
        [
            "manifest request, cold (closure realised)",
            f"{request_s:.2f}",
            f"{request_s / packing_s:.2f}x",
        ],
        ["packing alone (reference)", f"{packing_s:.2f}", "1.00x"],
    ]
    for stage in ("resolve", "realise", "closure", "layering", "layers", "record", "builder wall"):
        if stage in stages:
            value = median(stages[stage])
            rows.append([f"  build stage: {stage}", f"{value:.2f}", f"{value / packing_s:.2f}x"])
    builder = median(stages.get("builder wall", [0.0]))
    rows.append(
        [
            "  outside the builder (start, wait, answer)",
            f"{request_s - builder:.2f}",
            f"{(request_s - builder) / packing_s:.2f}x",
        ]
    )
    print(
        f"Cold build of `large` ({size / 2**20:.0f} MiB closure, {len(paths)} store paths), "
        f"{os.cpu_count()} cores, median of {args.rounds} round(s)"
    )
    print(table(["", "seconds", "vs packing alone"], rows))
    return 0


def _nar_sizes(paths: Sequence[str]) -> list[str]:
    result = subprocess.run(
        ["nix-store", "--query", "--size", *paths],
        env=nix_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


if __name__ == "__main__":
    sys.exit(main())
