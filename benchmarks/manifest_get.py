"""Benchmark: warm manifest GET, ours vs Debian's ``docker-registry`` (distribution 2.8).

Usage::

    python benchmarks/manifest_get.py [--seconds 5] [--rounds 3] [--connections 1,32]

Starts ``nixery serve`` (the embedded registry, default workers and threads)
on the test package set and pulls ``hello`` once (a cold build), then starts
``docker-registry`` with filesystem storage (Debian's in-memory blob
descriptor cache, access log off, log level warn: its fastest configuration)
and copies the same image into it with skopeo, digests preserved, so both
serve the identical manifest bytes. Then ``wrk`` drives each server in turn,
the same URL, ``Accept`` and connection count, alternating round by round:
the manifest by tag (ours resolves the name to its cache key on every
request) and by digest. The table gives the median over rounds of the
throughput and of wrk's p50 and p99 latencies. Target: our throughput at
least docker-registry's, our p99 no worse.

Needs ``wrk``, ``docker-registry``, ``skopeo`` (``scripts/setup --test``)
and Nix.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import NIX_CONFIG, TEST_PKGS, fmt_ratio, median, table
from tests.support.nixery_server import start_nixery
from tests.support.procs import ServerProcess, free_port, http_ok, start_server, wait_until

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
REGISTRY_CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, connections: int, seconds: float) -> Load:
    threads = 1 if connections == 1 else 2
    result = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-H",
            f"Accept: {DOCKER_V2}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"wrk {url}: socket errors {socket_errors.group(1)}", file=sys.stderr)
    return Load(rps, p50, p99, int(errors.group(1)) if errors else 0)


def start_docker_registry(root: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(root=root / "storage", port=port))
    server = start_server(
        "docker-registry", ["docker-registry", "serve", config], root / "registry.log"
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(url + "/v2/"), server, what="answering /v2/")
    return server, url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,32", help="comma-separated")
    parser.add_argument("--workers", type=int, default=2, help="nixery serve --workers")
    args = parser.parse_args(argv)
    for tool in ("wrk", "docker-registry", "skopeo", "nix-build"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: run scripts/setup --test", file=sys.stderr)
            return 2
    os.environ.setdefault("NIX_CONFIG", NIX_CONFIG)
    with tempfile.TemporaryDirectory(prefix="bench-manifest-") as temp:
        root = Path(temp)
        ours = start_nixery(
            root / "nixery", {"NIXERY_PKGS_PATH": str(TEST_PKGS)}, workers=args.workers
        )
        reference: ServerProcess | None = None
        try:
            response = ours.get("/v2/hello/manifests/latest", headers={"Accept": DOCKER_V2})
            response.raise_for_status()
            digest = response.headers["Docker-Content-Digest"]
            size = len(response.content)
            reference, reference_url = start_docker_registry(root / "registry")
            subprocess.run(
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--preserve-digests",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    f"docker://{ours.host}/hello:latest",
                    f"docker://{reference_url.removeprefix('http://')}/hello:latest",
                ],
                check=True,
            )
            check = subprocess.run(
                [
                    "skopeo",
                    "inspect",
                    "--tls-verify=false",
                    "--raw",
                    f"docker://{reference_url.removeprefix('http://')}/hello:latest",
                ],
                capture_output=True,
                check=True,
            ).stdout
            if len(check) != size or json.loads(check) != json.loads(response.content):
                raise RuntimeError("docker-registry does not serve the same manifest")
            targets = {
                "by tag": "/v2/hello/manifests/latest",
                "by digest": f"/v2/hello/manifests/{digest}",
            }
            results: dict[tuple[str, int, str], list[Load]] = {}
            for _ in range(args.rounds):
                for what, path in targets.items():
                    for connections in [int(c) for c in args.connections.split(",")]:
                        for server, base in (
                            ("docker-registry", reference_url),
                            ("ours", ours.url),
                        ):
                            load = wrk(base + path, connections, args.seconds)
                            results.setdefault((what, connections, server), []).append(load)
                            print(f"{what} c={connections} {server}: {load}", file=sys.stderr)
        finally:
            ours.stop()
            if reference is not None:
                reference.stop()
    rows = []
    for what in targets:
        for connections in [int(c) for c in args.connections.split(",")]:
            ref = results[(what, connections, "docker-registry")]
            mine = results[(what, connections, "ours")]
            ref_rps, our_rps = (
                median([r.requests_per_s for r in ref]),
                median([r.requests_per_s for r in mine]),
            )
            ref_p99, our_p99 = median([r.p99_ms for r in ref]), median([r.p99_ms for r in mine])
            rows.append(
                [
                    what,
                    connections,
                    f"{ref_rps:,.0f}",
                    f"{our_rps:,.0f}",
                    fmt_ratio(our_rps, ref_rps),
                    f"{median([r.p50_ms for r in ref]):.2f} / {ref_p99:.2f}",
                    f"{median([r.p50_ms for r in mine]):.2f} / {our_p99:.2f}",
                    fmt_ratio(our_p99, ref_p99),
                    sum(r.errors for r in ref + mine),
                ]
            )
    print(
        f"Warm manifest GET ({size} bytes), {os.cpu_count()} cores, wrk {args.seconds:g} s x "
        f"{args.rounds} rounds, medians; ours: nixery serve --workers {args.workers}"
    )
    print(
        table(
            [
                "manifest",
                "connections",
                "docker-registry req/s",
                "ours req/s",
                "throughput ratio",
                "docker-registry p50 / p99 ms",
                "ours p50 / p99 ms",
                "p99 ratio",
                "non-2xx",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
