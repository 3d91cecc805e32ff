"""Sustained load: warm pulls at a steady rate, with the servers' memory watched.

Usage::

    python benchmarks/load.py --stack embedded --minutes 10 --rate 20
    python benchmarks/load.py --stack serverless --minutes 10 --rate 20 --json out.json
    python benchmarks/load.py --url http://127.0.0.1:8080 --pid 4242 --minutes 1

``--stack`` starts the registry itself, as the tests do (real processes:
``nixery serve`` on tests/pkgs; or both functions under functions-framework
behind the front proxy, with the Firestore and Cloud Storage emulators and
the Cloud Run fake), and stops it afterwards; ``--url`` measures one that is
already running, ``--pid`` naming the server processes to watch.

A *pull* is what a client does for a cached image (``--image``, built once
before the clock starts): HEAD of the manifest, GET of the manifest, GET of
every blob. The embedded server streams blobs; the serverless blob function
answers 307 with a signed URL, followed only with ``--follow`` (the bytes
then come from Cloud Storage, not the functions). Pulls start at a steady
rate whatever the answers do (open loop: a slow answer does not slow the
schedule, so queueing shows as latency), on a pool of client threads with
kept-alive connections. A warm-up of a tenth of the run (at most 30 s) at
the same rate comes first and is not counted.

Reported: pulls and requests, errors (any exception or unexpected status;
must be 0), latency percentiles per request kind and per pull (from its
scheduled start), the achieved rate, and the resident memory (VmRSS) of
every server process, sampled every ``--sample-s`` seconds: first, last,
peak, and the slope of a least-squares line over the second half of the run
(MiB per minute; flat memory is close to 0).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "shared")]

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OFFLINE_NIX_CONFIG = "substituters =\nbuild-users-group =\nsandbox = false\nbuild-poll-interval = 1"


@dataclass
class Sample:
    at_s: float  # since the measured run started
    rss_kib: dict[str, int]  # process label -> VmRSS


@dataclass
class Report:
    target: str
    image: str
    duration_s: float
    rate: float
    pulls: int = 0
    requests: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def achieved_rate(self) -> float:
        return self.pulls / self.duration_s if self.duration_s else 0.0


def rss_kib(pid: int) -> int | None:
    try:
        for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants, builders excluded (they come and go)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [pid], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            cmdline = Path(f"/proc/{child}/cmdline")
            with contextlib.suppress(OSError):
                if b"builder_job" in cmdline.read_bytes():
                    continue
            found.append(child)
            todo.append(child)
    return found


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)}


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread * 60


class Load:
    """Warm pulls of one image at a steady rate; see the module doc."""

    def __init__(
        self,
        url: str,
        image: str,
        *,
        follow: bool = False,
        threads: int = 32,
        timeout_s: float = 30,
    ) -> None:
        self.url, self.image, self.follow, self.timeout_s = (
            url.rstrip("/"),
            image,
            follow,
            timeout_s,
        )
        self.threads = threads
        self._local = threading.local()
        self._lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.pulls = self.requests = 0
        self.digests = self._prepare()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _prepare(self) -> list[str]:
        """Build the image if needed (a cold pull), return its blobs' digests."""
        answer = requests.get(self._manifest_url, headers={"Accept": DOCKER}, timeout=600)
        answer.raise_for_status()
        manifest = answer.json()
        return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]

    @property
    def _manifest_url(self) -> str:
        return f"{self.url}/v2/{self.image}/manifests/latest"

    def _request(self, kind: str, method: str, url: str, expected: tuple[int, ...]) -> None:
        started = time.monotonic()
        try:
            answer = self._session().request(
                method,
                url,
                headers={"Accept": DOCKER},
                allow_redirects=self.follow,
                timeout=self.timeout_s,
            )
            answer.content  # read the body: a pull downloads it  # noqa: B018
            problem = None if answer.status_code in expected else f"{answer.status_code}"
        except requests.RequestException as exc:
            problem = f"{type(exc).__name__}: {exc}"
        took = time.monotonic() - started
        with self._lock:
            self.requests += 1
            self.latencies.setdefault(kind, []).append(took)
            if problem is not None:
                self.errors.append(f"{method} {url}: {problem}"[:300])

    def pull(self, scheduled: float) -> None:
        self._request("manifest HEAD", "HEAD", self._manifest_url, (200,))
        self._request("manifest GET", "GET", self._manifest_url, (200,))
        for digest in self.digests:
            blob = f"{self.url}/v2/{self.image}/blobs/{digest}"
            self._request("blob GET", "GET", blob, (200,) if self.follow else (200, 307))
        with self._lock:
            self.pulls += 1
            self.latencies.setdefault("pull", []).append(time.monotonic() - scheduled)

    def run(
        self, seconds: float, rate: float, on_tick: Callable[[float], None] | None = None
    ) -> None:
        """Start ``rate`` pulls per second for ``seconds``; wait for them all."""
        interval = 1.0 / rate
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            start = time.monotonic()
            n = 0
            while (scheduled := start + n * interval) < start + seconds:
                delay = scheduled - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if on_tick is not None:
                    on_tick(scheduled - start)
                pool.submit(self.pull, scheduled)
                n += 1

    def reset(self) -> None:
        with self._lock:
            self.latencies, self.errors, self.pulls, self.requests = {}, [], 0, 0


def run_load(
    url: str,
    image: str,
    pids: Mapping[str, int],
    *,
    seconds: float,
    rate: float,
    sample_s: float = 5.0,
    follow: bool = False,
    target: str = "",
) -> Report:
    """Warm up, then pull at ``rate`` per second for ``seconds``; ``pids``
    (label -> server process) are sampled with their descendants."""
    load = Load(url, image, follow=follow)
    load.run(min(seconds / 10, 30.0), rate)  # warm-up: connections, caches, threads
    load.reset()
    report = Report(target or url, image, seconds, rate)
    next_sample = [0.0]

    def sample(elapsed: float, last: bool = False) -> None:
        if elapsed < next_sample[0] and not last:
            return
        next_sample[0] += sample_s
        rss: dict[str, int] = {}
        for label, pid in pids.items():
            for member in process_tree(pid):
                value = rss_kib(member)
                if value is not None:
                    rss[f"{label}[{member}]"] = value
        report.samples.append(Sample(round(elapsed, 1), rss))

    started = time.monotonic()
    load.run(seconds, rate, on_tick=sample)
    report.duration_s = round(time.monotonic() - started, 1)
    sample(report.duration_s, last=True)  # after every pull ended
    report.pulls, report.requests, report.errors = load.pulls, load.requests, len(load.errors)
    report.error_examples = load.errors[:5]
    report.latency_ms = {kind: percentiles(values) for kind, values in load.latencies.items()}
    for label in sorted({k for s in report.samples for k in s.rss_kib}):
        series = [(s.at_s, s.rss_kib[label] / 1024) for s in report.samples if label in s.rss_kib]
        second_half = [p for p in series if p[0] >= report.duration_s / 2]
        report.memory[label] = {
            "first_mib": round(series[0][1], 1),
            "last_mib": round(series[-1][1], 1),
            "peak_mib": round(max(v for _, v in series), 1),
            "slope_mib_per_min": round(slope_per_minute(second_half), 3),
        }
    return report


@contextlib.contextmanager
def started_stack(kind: str, work: Path) -> Iterator[tuple[str, dict[str, int], bool]]:
    """(url, label -> pid, follow?) of a registry started as the tests start it."""
    os.environ.setdefault("NIX_CONFIG", OFFLINE_NIX_CONFIG)
    pkgs = REPO / "tests" / "pkgs"
    if kind == "embedded":
        from tests.support.nixery_server import start_nixery

        server = start_nixery(work / "embedded", {"NIXERY_PKGS_PATH": str(pkgs)})
        try:
            yield server.url, {"nixery serve": server.process.pid}, False
        finally:
            server.stop()
        return
    from tests.support.firestore_emulator import running_emulator
    from tests.support.gcs_emulator import start_gcs_emulator
    from tests.support.serverless import start_serverless

    gcs = start_gcs_emulator(work / "gcs")
    try:
        with running_emulator(work / "firestore") as firestore:
            stack = start_serverless(
                work / "stack", gcs=gcs, firestore=firestore, pkgs_path=pkgs, manifest_processes=2
            )
            try:
                pids = {
                    f"{f.target} function {i}": f.process.pid
                    for i, f in enumerate([*stack.manifest_functions, stack.blob_function])
                }
                pids["firestore emulator"] = firestore.process.pid
                pids["fake-gcs-server"] = gcs.server.pid
                yield stack.url, pids, False
            finally:
                stack.stop()
    finally:
        gcs.stop()


def render(report: Report) -> str:
    lines = [
        f"{report.target}: {report.image}, {report.duration_s:.0f} s at {report.rate:g} pulls/s "
        f"(achieved {report.achieved_rate:.2f}/s)",
        f"  pulls {report.pulls}, requests {report.requests}, errors {report.errors}",
        *(f"    {e}" for e in report.error_examples),
        "  latency ms          n      p50      p90      p99      max",
    ]
    for kind, stats in report.latency_ms.items():
        lines.append(
            f"  {kind:<14} {stats['n']:>7.0f} {stats['p50']:>8.2f} {stats['p90']:>8.2f} "
            f"{stats['p99']:>8.2f} {stats['max']:>8.2f}"
        )
    lines.append("  RSS MiB                               first     last     peak  slope/min")
    for label, mem in report.memory.items():
        lines.append(
            f"  {label:<36} {mem['first_mib']:>7.1f}  {mem['last_mib']:>7.1f}  "
            f"{mem['peak_mib']:>7.1f}  {mem['slope_mib_per_min']:>+8.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", choices=("embedded", "serverless"))
    where.add_argument("--url", help="a registry that is already running")
    parser.add_argument("--pid", type=int, action="append", default=[], help="with --url")
    parser.add_argument("--image", default="shell/hello")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=20.0, help="pulls per second")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--follow", action="store_true", help="follow blob redirects")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nixery-load-")))
            url, pids, follow = stack.enter_context(started_stack(args.stack, work))
        else:
            url, pids, follow = args.url, {f"pid {p}": p for p in args.pid}, False
        report = run_load(
            url,
            args.image,
            pids,
            seconds=args.minutes * 60,
            rate=args.rate,
            sample_s=args.sample_s,
            follow=args.follow or follow,
            target=args.stack or url,
        )
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=1))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
