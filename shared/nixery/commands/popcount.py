"""``nixery popcount --channel NAME``: popularity data for ``NIX_POPULARITY_URL``.

Computed as Nixery's popcount computes it (:mod:`popcount`): the channel's
release is pinned, its ``store-paths.xz`` read, every path's narinfo fetched
from the binary cache (in parallel, cached on disk so a rerun resumes) and
the references counted. Writes ``{"name-version": count}`` JSON; with
``--top N`` it also prints the N most popular of the channel's packages as
image names, one per line, ready for ``nixery prebuild --from -``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nixery.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from nixery.progress import make_console

HELP = "count how widely each store path of a channel is used (Nixery's popcount)"
DESCRIPTION = """Compute popularity data in Nixery's format ({"name-version": count}) for a
channel: its store paths (store-paths.xz of the pinned release), each path's
narinfo References from the binary cache, counted. Serve the file as
NIX_POPULARITY_URL (http(s)://, gs:// or a file) and the builder's layering
uses it. Narinfos are cached on disk: an interrupted run resumes."""
EXAMPLES = """examples:
  nixery popcount --channel nixos-unstable
  nixery popcount --channel nixos-24.11 --output popularity.json --jobs 64
  nixery popcount --channel nixos-unstable --top 50 > popular.txt
  nixery popcount --channel nixos-unstable --top 50 | nixery prebuild --from -
"""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nixery" / "narinfo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from popcount.channel import DEFAULT_CHANNEL_BASE
    from popcount.fetch import DEFAULT_CACHE_URL, DEFAULT_JOBS

    parser.add_argument("--channel", required=True, help="channel name, e.g. nixos-unstable")
    parser.add_argument(
        "--channel-url",
        default=os.environ.get("NIXERY_CHANNEL_URL") or DEFAULT_CHANNEL_BASE,
        metavar="URL",
        help="where channels are published (default $NIXERY_CHANNEL_URL or %(default)s)",
    )
    parser.add_argument(
        "--cache-url",
        default=DEFAULT_CACHE_URL,
        metavar="URL",
        help="binary cache serving the narinfos (default %(default)s)",
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="where to write the JSON (default popularity-<channel>-<commit>.json)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=_default_cache_dir(),
        metavar="DIR",
        help="narinfo cache, kept between runs (default %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=DEFAULT_JOBS,
        help="parallel downloads (default %(default)s)",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="N",
        help="print the N most popular packages as image names on stdout",
    )


def run(args: argparse.Namespace) -> int:
    from popcount.channel import ChannelError, resolve_release, store_paths
    from popcount.count import popularity, top_packages
    from popcount.fetch import NarinfoFetcher

    if args.jobs < 1 or args.top < 0:
        raise CliError("--jobs must be at least 1 and --top not negative", EXIT_USAGE)
    console = make_console(stderr=True)
    try:
        release = resolve_release(args.channel, args.channel_url)
        listed = store_paths(release)
        fetcher = NarinfoFetcher(args.cache_url, args.cache_dir, jobs=args.jobs)
    except (ChannelError, ValueError) as exc:
        raise CliError(str(exc), EXIT_FAILED) from exc
    console.print(
        f"{release.channel} is {release.commit} ({release.url}): {len(listed)} store paths",
        highlight=False,
    )
    columns = (
        TextColumn("narinfos"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    lock = threading.Lock()
    with Progress(*columns, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("narinfos", total=len(set(listed)), detail="")

        def advance(outcome: object) -> None:
            with lock:
                bar.update(task, advance=1)

        outcome = fetcher.fetch_all(listed, advance)
        bar.update(task, detail=f"{outcome.downloaded} downloaded, {outcome.from_cache} cached")
    console.print(
        f"{outcome.downloaded} downloaded, {outcome.from_cache} from {args.cache_dir}, "
        f"{len(outcome.missing)} not in the cache",
        highlight=False,
    )
    if outcome.failed:
        path, reason = next(iter(outcome.failed.items()))
        raise CliError(
            f"{len(outcome.failed)} narinfos could not be downloaded (e.g. {path.path}: "
            f"{reason}); run again to resume, the {len(outcome.references)} fetched are cached",
            EXIT_FAILED,
        )
    counts = popularity(outcome.references[p] for p in sorted(outcome.references, key=str))
    output = Path(args.output or f"popularity-{release.channel}-{release.commit}.json")
    output.write_text(json.dumps(counts, indent=0, sort_keys=True) + "\n")
    console.print(f"wrote {len(counts)} entries to {output}", highlight=False)
    for name, _count in top_packages(listed, counts, args.top):
        print(name)
    return EXIT_OK
