"""Fixtures shared by the whole suite.

Real services only: each fixture starts the real thing (Nix, the embedded
registry as its own process, registry clients), waits until it answers, and
stops it by PID. A missing tool skips with the command that installs it;
``scripts/test`` installs everything, so CI skips nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.nixery_server import NixeryServer, start_nixery

REPO = Path(__file__).resolve().parent.parent
PKGS = REPO / "tests" / "pkgs"
OFFLINE_NIX_CONFIG = "substituters =\nbuild-users-group =\nsandbox = false\nbuild-poll-interval = 1"


@pytest.fixture(scope="session", autouse=True)
def _nix_config() -> None:
    """Nix without a binary cache or build users (what these machines have)."""
    os.environ.setdefault("NIX_CONFIG", OFFLINE_NIX_CONFIG)


@pytest.fixture(scope="session")
def nix() -> None:
    if shutil.which("nix-instantiate") is None or not Path("/bin/busybox").exists():
        pytest.skip("needs Nix and a static busybox: apt-get install nix-bin busybox-static")


@pytest.fixture(scope="session")
def pkgs_path() -> Path:
    return PKGS


@pytest.fixture
def registry(nix: None, tmp_path: Path) -> Iterator[NixeryServer]:
    """A fresh embedded registry (its own storage, metadata and port) serving
    the test package set."""
    server = start_nixery(tmp_path / "registry", {"NIXERY_PKGS_PATH": str(PKGS)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_registry(nix: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NixeryServer]:
    """One registry for a whole module, for tests that only read."""
    server = start_nixery(tmp_path_factory.mktemp("registry"), {"NIXERY_PKGS_PATH": str(PKGS)})
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report names every server of the suite that died
    under it (a refused connection then says why), with its log tail."""
    from tests.support.procs import died_unexpectedly

    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for text in died_unexpectedly():
            report.sections.append(("servers that died", text))
