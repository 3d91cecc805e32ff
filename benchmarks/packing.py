"""Benchmark: layer packing (tar + gzip + both sha256) vs ``tar | gzip -6 | sha256sum``.

Usage::

    python benchmarks/packing.py [--mib 341] [--rounds 1]

The test package set's large packages (``large``: copies of an executable,
about 2:1; ``largeCompressible``: repeated text; ``largeIncompressible``:
random bytes), ``--mib`` MiB each (default 341: a 1 GiB closure), are
realised with Nix, then packed, each on its own and all three as one layer:

- ours: :func:`builder_job.tarlayer.pack_layer` into a scratch file, as the
  builder does (deterministic tar, diff_id and digest while streaming,
  gzip members compressed on every core), in a fresh process per layer;
- reference: ``tar -cf - PATHS | gzip -6 | tee >(wc -c) | sha256sum`` (GNU
  tar and gzip; one digest, nothing written to disk; ``tee`` only counts).

Rounds alternate reference and ours per layer; the table gives the median
wall time as throughput (tar bytes per second) and the CPU time (user +
system of every process: the part a busy machine cannot blur), compressed
sizes, and our
peak RSS (memory flat in layer size: the 1 GiB layer needs no more than a
341 MiB one). Target: at least 2x the reference's throughput, compressed
size the same or smaller.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import fmt_ratio, median, realise, table

PACKAGES = ("large", "largeCompressible", "largeIncompressible")


@dataclass
class Run:
    seconds: float
    compressed: int
    cpu_seconds: float = 0.0  # user + system of every process involved
    peak_rss_mib: float = 0.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reference(paths: Sequence[str], scratch: Path) -> Run:
    count = scratch / "count"
    script = (
        'tar --sort=name -C / -cf - "$@" | gzip -6 | tee >(wc -c > "$COUNT") | sha256sum >/dev/null'
    )
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run(
        ["bash", "-c", script, "reference", *(p.lstrip("/") for p in paths)],
        env={**os.environ, "COUNT": str(count)},
        check=True,
    )
    seconds = time.perf_counter() - start
    for _ in range(100):  # the process substitution may finish a moment later
        text = count.read_text().strip() if count.exists() else ""
        if text:
            break
        time.sleep(0.01)
    count.unlink()
    return Run(seconds, int(text), children_cpu() - cpu)


def ours(paths: Sequence[str], scratch: Path) -> Run:
    cpu, start = children_cpu(), time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", str(scratch), *paths], stdout=subprocess.PIPE
    )
    out, _ = child.communicate()
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise RuntimeError(f"packing failed with {child.returncode}")
    result = json.loads(out)
    return Run(seconds, result["size"], children_cpu() - cpu, result["peak_rss_mib"])


def child(scratch: Path, paths: Sequence[str]) -> int:
    """Pack ``paths`` into a scratch file, as the builder does; print the result."""
    from builder_job.tarlayer import pack_layer

    fd, name = tempfile.mkstemp(dir=scratch, prefix="layer-")
    try:
        with os.fdopen(fd, "wb") as handle:
            layer = pack_layer(handle, list(paths))
    finally:
        os.unlink(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump({"size": layer.size, "peak_rss_mib": peak}, sys.stdout)
    return 0


def tar_size(paths: Sequence[str]) -> int:
    from builder_job.tarlayer import write_tar

    class Count:
        size = 0

        def write(self, data: bytes) -> int:
            self.size += len(data)
            return len(data)

    counter = Count()
    write_tar(counter, list(paths))  # type: ignore[arg-type]
    return counter.size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=int, default=341, help="MiB per large package")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(Path(args.child[0]), args.child[1:])

    paths = realise(PACKAGES, args.mib)
    layers = {name: [path] for name, path in zip(PACKAGES, paths, strict=True)}
    layers["closure (one layer)"] = paths
    sizes = {name: tar_size(layer_paths) for name, layer_paths in layers.items()}
    theirs: dict[str, list[Run]] = {name: [] for name in layers}
    mine: dict[str, list[Run]] = {name: [] for name in layers}
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as scratch:
        for _ in range(args.rounds):
            for name, layer_paths in layers.items():
                theirs[name].append(reference(layer_paths, Path(scratch)))
                mine[name].append(ours(layer_paths, Path(scratch)))
                print(
                    f"{name}: reference {theirs[name][-1].seconds:.1f} s, "
                    f"ours {mine[name][-1].seconds:.1f} s",
                    file=sys.stderr,
                )
    rows = []
    for name in layers:
        ref_s = median([r.seconds for r in theirs[name]])
        our_s = median([r.seconds for r in mine[name]])
        size = sizes[name]
        rows.append(
            [
                name,
                f"{size / 2**20:.0f}",
                f"{size / ref_s / 1e6:.1f}",
                f"{size / our_s / 1e6:.1f}",
                fmt_ratio(ref_s, our_s),
                f"{median([r.cpu_seconds for r in theirs[name]]):.1f}",
                f"{median([r.cpu_seconds for r in mine[name]]):.1f}",
                f"{theirs[name][0].compressed:,}",
                f"{mine[name][0].compressed:,}",
                f"{mine[name][0].compressed / theirs[name][0].compressed:.4f}",
                f"{max(r.peak_rss_mib for r in mine[name]):.0f}",
            ]
        )
    print(
        f"Layer packing, {os.cpu_count()} cores, median of {args.rounds} round(s): "
        "throughput in MB/s of tar"
    )
    print(
        table(
            [
                "layer",
                "tar MiB",
                "tar, gzip -6, sha256sum",
                "ours",
                "speed-up",
                "reference CPU s",
                "our CPU s",
                "gzip -6 bytes",
                "our bytes",
                "size ratio",
                "our peak RSS MiB",
            ],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
