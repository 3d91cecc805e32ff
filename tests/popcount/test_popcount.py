"""``nixery popcount`` against a channel and binary cache served on this machine.

The cache's narinfos are made from the test package set's real closure
(:mod:`tests.support.binary_cache`). The channel lists eight packages; their
real references (``nix-store -q --references``) are::

    hello-2.12.1             -> busybox-1.35.0
    foo-1.0                  -> libfoo-1.2.3, busybox-1.35.0
    foo-bar-2.0              -> libfoo-1.2.3, busybox-1.35.0
    libfoo-1.2.3             -> (none)
    busybox-1.35.0           -> busybox-1.35.0 (itself: its applet symlinks)
    python3.11-requests-...  -> python3.11-urllib3-2.0.7 (not listed itself)
    bash-interactive-5.2-p15 -> busybox-1.35.0
    coreutils-9.3            -> busybox-1.35.0

so, counted by hand: busybox 6 (hello, foo, foo-bar, itself, bash, coreutils),
libfoo 2 (foo, foo-bar), urllib3 1 (dropped, as Nixery drops every count
of one). A ninth listed path is not in the cache (skipped, like an unfree
package on cache.nixos.org).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PKGS
from tests.support.binary_cache import REVISION, Channel, make_channel

pytestmark = [pytest.mark.nix, pytest.mark.integration]

NIXERY = str(Path(sys.executable).parent / "nixery")
LISTED = [
    "hello",
    "foo",
    "fooBar",
    "libfoo",
    "busybox",
    "python3Packages.requests",
    "bashInteractive",
    "coreutils",
]
NOT_CACHED = "/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-unfree-tool-1.0"
BY_HAND = {"busybox-1.35.0": 6, "libfoo-1.2.3": 2}


@pytest.fixture
def channel(nix: None) -> Iterator[Channel]:
    served = make_channel(PKGS, LISTED, missing=[NOT_CACHED])
    try:
        yield served
    finally:
        served.stop()


def popcount(channel: Channel, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")}
    return subprocess.run(
        [
            NIXERY,
            "popcount",
            "--channel",
            channel.name,
            "--channel-url",
            channel.base,
            "--cache-url",
            channel.cache,
            "--cache-dir",
            str(cwd / "narinfo-cache"),
            "--jobs",
            "4",
            *args,
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_counts_match_the_hand_count_and_a_rerun_downloads_nothing(
    channel: Channel, tmp_path: Path
) -> None:
    hello = channel.narinfo_path(channel.listed["hello"])
    channel.server.fail_next(hello, count=2, status=503)  # retried, then fetched
    first = popcount(channel, tmp_path)
    assert first.returncode == 0, first.stderr
    output = tmp_path / f"popularity-{channel.name}-{REVISION}.json"
    assert json.loads(output.read_text()) == BY_HAND
    assert "9 store paths" in first.stderr
    assert "8 downloaded, 0 from" in first.stderr and "1 not in the cache" in first.stderr
    assert channel.server.count("/cache/", ".narinfo") == 9 + 2  # every listed path, 2 retries
    assert channel.server.count(f"/{channel.name}") == 1  # the redirect was read once
    # Only the listed paths' narinfos are read, not the whole closure (as Nixery).
    urllib3 = next(p for p in channel.closure if p.endswith("-python3.11-urllib3-2.0.7"))
    assert channel.server.count(channel.narinfo_path(urllib3)) == 0

    again = popcount(channel, tmp_path, "--output", "again.json")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text()) == BY_HAND
    assert "0 downloaded, 8 from" in again.stderr
    # Second run: only the path the cache lacks is asked for again.
    assert channel.server.count("/cache/", ".narinfo") == 11 + 1


def test_an_interrupted_download_resumes_from_the_disk_cache(
    channel: Channel, tmp_path: Path
) -> None:
    foo = channel.narinfo_path(channel.listed["foo"])
    channel.server.fail_next(foo, count=100, status=500)  # more than the retries
    failed = popcount(channel, tmp_path, "--output", "out.json")
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("nixery: 1 narinfos could not be downloaded")
    assert "run again to resume" in last
    assert not (tmp_path / "out.json").exists()  # never a partial result
    assert len(list((tmp_path / "narinfo-cache").glob("*.narinfo"))) == 7

    channel.server.failures.clear()
    before = channel.server.count("/cache/", ".narinfo")
    resumed = popcount(channel, tmp_path, "--output", "out.json")
    assert resumed.returncode == 0, resumed.stderr
    assert channel.server.count("/cache/", ".narinfo") - before == 2  # foo and the missing one
    assert json.loads((tmp_path / "out.json").read_text()) == BY_HAND


def test_top_prints_the_most_popular_packages_as_a_prebuild_list(
    channel: Channel, tmp_path: Path
) -> None:
    result = popcount(channel, tmp_path, "--top", "3")
    assert result.returncode == 0, result.stderr
    # busybox 6, libfoo 2, then the uncounted in name order.
    assert result.stdout.splitlines() == ["busybox", "libfoo", "bash-interactive"]


def test_an_unknown_channel_is_one_line_and_exit_1(channel: Channel, tmp_path: Path) -> None:
    result = subprocess.run(
        [NIXERY, "popcount", "--channel", "nixos-nope", "--channel-url", channel.base],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"nixery: no channel 'nixos-nope' at {channel.base} (404)"
    ]
