"""What the benchmarks share: import paths, statistics, tables, Nix.

Every benchmark runs ours and its reference one after the other in the same
run, interleaved round by round, so both see the same machine (other work on
a shared machine slows both alike) and the table's ratios are what counts.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT / "shared"), str(ROOT)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

NIX_CONFIG = "substituters =\nbuild-users-group =\nsandbox = false\nbuild-poll-interval = 1"
TEST_PKGS = ROOT / "tests" / "pkgs"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes into the README as it is)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def nix_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for offline Nix (unless NIX_CONFIG is already set)."""
    env = {**os.environ, **(extra or {})}
    env.setdefault("NIX_CONFIG", NIX_CONFIG)
    return env


def realise(attributes: Sequence[str], large_mib: int | None = None) -> list[str]:
    """Build attributes of the test package set; their store paths."""
    extra = {"NIXERY_TEST_LARGE_MIB": str(large_mib)} if large_mib is not None else {}
    argv = ["nix-build", str(TEST_PKGS), "--no-out-link"]
    for attribute in attributes:
        argv += ["-A", attribute]
    result = subprocess.run(argv, env=nix_env(extra), capture_output=True, text=True, check=True)
    return result.stdout.split()


def fmt_ratio(ours: float, reference: float) -> str:
    return f"{ours / reference:.2f}x" if reference else "-"
