"""``nixery prebuild`` on this machine: local builders, a bounded number at once.

The command runs as a user runs it, with logging shims for the Nix commands
first on its ``PATH`` (:func:`tests.support.nixery_server.make_nix_shims`),
so every realisation by a builder process it starts is counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PKGS
from tests.support.nixery_server import make_nix_shims

pytestmark = [pytest.mark.nix, pytest.mark.integration]

NIXERY = str(Path(sys.executable).parent / "nixery")
FIVE = ["hello", "foo", "foobar", "sdl2", "7zz:latest"]


def prebuild(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    shims = root / "nix-shims"
    make_nix_shims(shims, root / "nix-calls.log")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")},
        "PATH": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "NIXERY_PKGS_PATH": str(PKGS),
        "STORAGE_PATH": str(root / "storage"),
        "NIXERY_WORK_DIR": str(root / "work"),
    }
    return subprocess.run(
        [NIXERY, "prebuild", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )


def realisations(root: Path) -> list[str]:
    log = root / "nix-calls.log"
    calls = log.read_text().splitlines() if log.exists() else []
    return [c for c in calls if c.startswith("nix-store --realise")]


def results(output: str) -> dict[str, str]:
    return {row["image"]: row["result"] for row in json.loads(output)}


def test_five_images_build_once_and_a_second_prebuild_builds_none(tmp_path: Path) -> None:
    first = prebuild(tmp_path, *FIVE, "--jobs", "2", "--json")
    assert first.returncode == 0, first.stderr
    assert results(first.stdout) == {
        "hello:latest": "built",
        "foo:latest": "built",
        "foobar:latest": "built",
        "sdl2:latest": "built",
        "7zz:latest": "built",
    }
    assert len(realisations(tmp_path)) == 5  # one builder each
    # Without a terminal, progress is one line per change on stderr.
    assert "hello:latest running" in first.stderr
    assert "7zz:latest built" in first.stderr

    again = prebuild(tmp_path, *FIVE, "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert len(realisations(tmp_path)) == 5  # nothing new
    assert "5 images: 0 built, 5 already cached, 0 failed" in again.stdout
    for image in ("hello:latest", "7zz:latest"):
        line = next(line for line in again.stdout.splitlines() if image in line)
        assert "already cached" in line


def test_names_from_a_file_and_stdin_collapse_by_image(tmp_path: Path) -> None:
    listing = tmp_path / "popular.txt"
    listing.write_text("# popular images\nshell/hello   hello/shell\n\nfoo # a comment\n")
    result = prebuild(tmp_path, "--from", str(listing), "--from", "-", "--json", stdin="foo\n")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["image"] for row in rows] == [
        "shell/hello:latest, hello/shell:latest",
        "foo:latest",
    ]
    assert len(realisations(tmp_path)) == 2


def test_failures_are_summarised_with_their_reason_and_exit_1(tmp_path: Path) -> None:
    result = prebuild(tmp_path, "hello", "nosuch", "Bad_Name")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    nosuch = next(line for line in lines if line.strip().startswith("nosuch:latest"))
    assert "failed" in nosuch and "MANIFEST_UNKNOWN" in nosuch and "nosuch" in nosuch
    bad = next(line for line in lines if line.strip().startswith("Bad_Name:latest"))
    assert "failed" in bad and "NAME_INVALID" in bad
    assert "3 images: 1 built, 0 already cached, 2 failed" in result.stdout


def test_dry_run_lists_and_builds_nothing(tmp_path: Path) -> None:
    assert prebuild(tmp_path, "hello").returncode == 0
    built = len(realisations(tmp_path))
    result = prebuild(tmp_path, "--dry-run", "hello", "foo", "shell/foo")
    assert result.returncode == 0, result.stderr
    assert len(realisations(tmp_path)) == built
    would = {line.split()[0]: line for line in result.stdout.splitlines() if ":latest" in line}
    assert "already cached" in would["hello:latest"]
    assert "build" in would["foo:latest"] and "build" in would["shell/foo:latest"]
    assert "would build 2; 1 already cached; 0 invalid" in result.stdout


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = prebuild(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "nixery: no image names: give them as arguments, with --from FILE, or --from - (stdin)"
    ]
    missing = prebuild(tmp_path, "--from", str(tmp_path / "absent.txt"))
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("nixery: cannot read")
