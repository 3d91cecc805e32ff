"""``nixery prebuild``: build a list of images before anyone pulls them.

Names come from the arguments, from files (``--from FILE``, ``--from -`` for
stdin; one name or several per line, ``#`` comments) or both; tags are
allowed (``shell/git:v1``). Names of the same image collapse into one row.
Images already built are reported as cached and not touched.

Where the builds run follows the settings (the environment, or a
deployment's settings file given with ``--deployment``):

- ``NIXERY_LAUNCHER=local`` (the embedded registry's default): builder
  processes on this machine, at most ``--jobs`` at a time, each claimed,
  launched and followed exactly as a pull would
  (:class:`registry.builds.BuildCoordinator`).
- ``NIXERY_LAUNCHER=cloudrun`` (a deployment): every image is claimed up
  front, then ONE Cloud Run job execution is started whose ``--tasks`` tasks
  split the list (:mod:`registry.prebuild`, :mod:`builder_job.batch`); this
  command then follows the build records in the deployment's metadata store.
  Pulls meanwhile follow the same records instead of starting builds.

Either way a pull of a prebuilt image is a cache hit, and a second prebuild
of the same list builds nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
from pathlib import Path

from rich.console import Console

from launcher.port import Launcher
from metastore.port import MetadataStore
from nixery.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, load_settings
from nixery.progress import make_console, show_progress, summary_json, summary_line, summary_table
from nixery.tracking import ObservedMetadata, State, Tracker
from ocimodel.errors import RegistryError
from registry import prebuild
from registry.prebuild import Item, Status
from registry.settings import Settings

HELP = "build a list of images ahead of their first pull"
DESCRIPTION = """Build every listed image that is not cached yet. Locally (NIXERY_LAUNCHER=local)
up to --jobs builder processes run at once; against a deployment
(--deployment FILE, or NIXERY_LAUNCHER=cloudrun in the environment) one Cloud
Run job execution is started whose tasks split the list, and its build records
are followed. A live table shows each image's state and time; a summary table
ends the run (built, already cached, failed with the reason)."""
EXAMPLES = """examples:
  nixery prebuild shell/git hello python3packages.numpy
  nixery prebuild --from popular.txt --jobs 4
  nixery popcount --channel nixos-unstable --top 50 | nixery prebuild --from -
  nixery prebuild --deployment prod.env --tasks 8 --from popular.txt
  nixery prebuild --dry-run --from popular.txt        # only list what would be built
"""
FOLLOWERS = 32  # threads following dispatched builds: they only poll records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image names, tags allowed")
    parser.add_argument(
        "--from",
        dest="files",
        action="append",
        default=[],
        metavar="FILE",
        help="read names from FILE ('-' for stdin); may be repeated",
    )
    parser.add_argument(
        "--jobs", "-j", type=int, default=2, help="local builds at once (default 2)"
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=0,
        help=f"tasks of the Cloud Run execution (default: one per image, at most "
        f"{prebuild.DEFAULT_TASKS})",
    )
    parser.add_argument(
        "--deployment",
        metavar="FILE",
        help="a deployment's settings (NAME=value lines, e.g. from Terraform's outputs)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be built; build nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _names(args: argparse.Namespace) -> list[str]:
    names = list(args.images)
    for file in args.files:
        try:
            if file == "-":
                names.extend(prebuild.read_names(sys.stdin))
            else:
                names.extend(prebuild.read_names(Path(file).read_text().splitlines()))
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}", EXIT_USAGE) from exc
    if not names:
        raise CliError(
            "no image names: give them as arguments, with --from FILE, or --from - (stdin)",
            EXIT_USAGE,
        )
    return names


def _track(items: list[Item]) -> Tracker:
    tracker = Tracker()
    for item in items:
        shown = ", ".join((item.image, *item.aliases))
        key = item.spec.cache_key if item.spec is not None else ""
        if item.status is Status.CACHED:
            tracker.add(shown, State.CACHED, key)
        elif item.status is Status.FAILED:
            tracker.add(shown, State.FAILED, key, reason=_reason(item.error))
        else:
            tracker.add(shown, State.QUEUED, key)
    return tracker


def _reason(error: BaseException | None) -> str:
    if isinstance(error, RegistryError):
        return f"{error.code.name}: {error}"
    return str(error or "")


def _follow(
    items: list[Item],
    tracker: Tracker,
    settings: Settings,
    metadata: MetadataStore,
    launcher: Launcher,
    workers: int,
    failure_ttl_s: float,
) -> None:
    """Obtain every item still to build (claim, launch and follow, or just
    follow a build claimed already), ``workers`` at a time. ``failure_ttl_s``
    0 retries an image that failed before; infinity answers a failure of the
    build being followed instead of starting it again."""
    from registry.builds import BuildCoordinator

    coordinator = BuildCoordinator(
        metadata=metadata,
        launcher=launcher,
        wait_s=float("inf"),  # builds are bounded by NIX_TIMEOUT and their leases
        start_s=settings.build_start_s,
        failure_ttl_s=failure_ttl_s,
    )

    def obtain(item: Item) -> None:
        assert item.spec is not None
        key = item.spec.cache_key
        try:
            image = coordinator.obtain(item.spec)
        except RegistryError as exc:
            tracker.update(key, State.FAILED, reason=_reason(exc))
        else:
            tracker.update(key, State.BUILT, build_id=image.build_id)

    todo = [i for i in items if i.status in (Status.STARTED, Status.BUILDING)]
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        for future in [pool.submit(obtain, item) for item in todo]:
            future.result()


def run(args: argparse.Namespace) -> int:
    names = _names(args)
    if args.jobs < 1 or args.tasks < 0:
        raise CliError("--jobs must be at least 1 and --tasks positive", EXIT_USAGE)
    settings = load_settings(args.deployment)
    from registry import wiring
    from registry.specs import resolver_for

    metadata = wiring.metadata_store(settings)
    items = prebuild.resolve(names, settings, resolver_for(settings))
    items = prebuild.check_cache(items, metadata)
    tracker = _track(items)
    console = make_console(stderr=True)
    out = make_console()
    if args.dry_run:
        return _dry_run(items, out)
    observed = ObservedMetadata(metadata, tracker)
    cloud = settings.launcher == "cloudrun"
    where = f"Cloud Run job {settings.builder_job}" if cloud else f"{args.jobs} local builders"
    with show_progress(tracker, console, f"prebuild on {where}"):
        if cloud:
            launcher = wiring.launcher(settings)
            items = prebuild.claim(
                items, observed, start_s=settings.build_start_s, failure_ttl_s=0.0
            )
            items, executions = prebuild.dispatch(
                items, launcher, observed, settings, tasks=args.tasks
            )
            for item in items:
                if item.status is Status.FAILED and item.spec is not None:
                    tracker.update(item.spec.cache_key, State.FAILED, reason=_reason(item.error))
                elif item.status is Status.CACHED and item.spec is not None:
                    tracker.update(item.spec.cache_key, State.CACHED)
            if executions:
                console.print(f"started {', '.join(executions)}", highlight=False)
            _follow(items, tracker, settings, observed, launcher, FOLLOWERS, float("inf"))
        else:
            from launcher.local import LocalLauncher

            launcher = LocalLauncher(log_dir=settings.work_dir / "logs")
            # Asked explicitly: an image that failed before is tried again.
            _follow(items, tracker, settings, observed, launcher, args.jobs, 0.0)
    rows = tracker.rows()
    if args.json:
        print(summary_json(rows, tracker.now()))
    else:
        out.print(summary_table(rows, tracker.now()))
        out.print(summary_line(rows), highlight=False)
    return EXIT_FAILED if any(r.state is State.FAILED for r in rows) else EXIT_OK


def _dry_run(items: list[Item], out: Console) -> int:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, title="prebuild --dry-run", title_justify="left")
    table.add_column("image", no_wrap=True)
    table.add_column("would")
    table.add_column("cache key", no_wrap=True, style="dim")
    for item in items:
        would = {
            Status.CACHED: "skip: already cached",
            Status.FAILED: f"fail: {_reason(item.error)}",
        }.get(item.status, "build")
        key = item.spec.cache_key[:16] if item.spec is not None else ""
        table.add_row(", ".join((item.image, *item.aliases)), would, key)
    out.print(table)
    building = sum(1 for i in items if i.status is Status.STARTED)
    cached = sum(1 for i in items if i.status is Status.CACHED)
    invalid = sum(1 for i in items if i.status is Status.FAILED)
    out.print(
        f"would build {building}; {cached} already cached; {invalid} invalid", highlight=False
    )
    return EXIT_FAILED if invalid else EXIT_OK
