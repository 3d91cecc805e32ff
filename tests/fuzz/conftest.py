"""Fuzz suite profiles and the closing count of requests sent.

``pytest tests/fuzz -k "not http" --hypothesis-profile=fuzz-long`` runs
twenty times the CI volume in process (about 220,000 requests, some
minutes); the profile is registered here, so name this directory on the
command line to use it. (With the HTTP test included it also sends 12,000
requests to a real server, each cold name a real Nix evaluation.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.fuzz.harness import COUNTS, Functions, load_functions, unhandled
from tests.fuzz.seed import seed_image

REPO = Path(__file__).resolve().parents[2]
settings.register_profile("fuzz-long", max_examples=2000)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        parts = ", ".join(f"{suite} {count}" for suite, count in sorted(COUNTS.items()))
        terminalreporter.write_line(f"fuzz: {sum(COUNTS.values())} requests ({parts})")


@pytest.fixture(scope="module")
def functions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Functions]:
    """Both functions in this process, seeded with ``hello:latest``; at the
    end, no log line may show an exception that escaped a handler."""
    root = tmp_path_factory.mktemp("fuzz-functions")
    env = {
        "NIXERY_PKGS_PATH": str(REPO / "tests" / "pkgs"),
        "STORAGE_PATH": str(root / "storage"),
        "NIXERY_WORK_DIR": str(root / "work"),
        "NIXERY_BUILD_WAIT_S": "5",
        "NIXERY_SOURCE_TTL_S": "3600",
    }
    with load_functions(env) as loaded:
        seed_image(loaded.settings)
        yield loaded
        assert unhandled(loaded.log) == []
