"""A pull waiting for a local build answers when the builder exits, not a poll
later: `LocalLauncher.wait_for_exit` and the coordinator's use of it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from launcher.local import LocalLauncher
from launcher.port import BuildRequest
from metastore.records import ImageRecord, StoredManifest
from metastore.sqlite import SqliteMetadataStore
from nixspec.names import Arch
from nixspec.spec import ImageSpec, PackageSource, SourceKind
from ocimodel.errors import ErrorCode, RegistryError
from registry.builds import POLL_FIRST_S, BuildCoordinator

SPEC = ImageSpec(
    "hello", "latest", ("hello",), Arch.AMD64, PackageSource(SourceKind.PATH, "/pkgs", "rev")
)


def sleeper(seconds: float) -> LocalLauncher:
    return LocalLauncher(command=[sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_wait_for_exit_returns_when_the_builder_exits() -> None:
    launcher = sleeper(0.3)
    launcher.launch(BuildRequest("b1", SPEC))
    start = time.monotonic()
    assert launcher.wait_for_exit("b1", 30.0)
    assert time.monotonic() - start < 10.0  # far less than the 30 s asked
    assert not launcher.wait_for_exit("b1", 30.0)  # gone: the caller sleeps instead


def test_wait_for_exit_times_out_while_the_builder_runs() -> None:
    launcher = sleeper(30)
    launcher.launch(BuildRequest("b2", SPEC))
    try:
        start = time.monotonic()
        assert launcher.wait_for_exit("b2", 0.2)
        assert 0.15 < time.monotonic() - start < 10.0
    finally:
        launcher.processes["b2"].kill()


def test_unknown_builds_are_not_waited_for() -> None:
    start = time.monotonic()
    assert not sleeper(0).wait_for_exit("elsewhere", 30.0)
    assert time.monotonic() - start < 1.0


class FinishingLauncher:
    """Launches nothing; its ``wait_for_exit`` records the build's success,
    as a builder does just before it exits."""

    def __init__(self, store: SqliteMetadataStore) -> None:
        self.store = store
        self.waits: list[float] = []

    def launch(self, request: BuildRequest) -> str:
        return "test/0"

    def wait_for_exit(self, build_id: str, timeout: float) -> bool:
        self.waits.append(timeout)
        image = ImageRecord(SPEC.cache_key, (StoredManifest("application/json", b"{}"),))
        self.store.complete_build(
            build_id, image, now=time.time(), timings={}, closure_size=0, layer_count=1, log_tail=""
        )
        return True


class PlainLauncher:
    def launch(self, request: BuildRequest) -> str:
        return "test/0"


def coordinator(
    store: SqliteMetadataStore, launcher: object, sleeps: list[float]
) -> BuildCoordinator:
    return BuildCoordinator(
        metadata=store,
        launcher=launcher,  # type: ignore[arg-type]
        wait_s=0.5,
        start_s=120.0,
        failure_ttl_s=60.0,
        sleep=sleeps.append,
    )


def test_the_coordinator_waits_on_the_builder_instead_of_sleeping(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "metadata.sqlite3")
    launcher = FinishingLauncher(store)
    sleeps: list[float] = []
    image = coordinator(store, launcher, sleeps).obtain(SPEC)
    assert image.cache_key == SPEC.cache_key
    assert len(launcher.waits) == 1 and sleeps == []


def test_without_wait_for_exit_the_coordinator_sleeps(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "metadata.sqlite3")
    sleeps: list[float] = []
    with pytest.raises(RegistryError) as error:  # still building after wait_s
        coordinator(store, PlainLauncher(), sleeps).obtain(SPEC)
    assert error.value.code is ErrorCode.TOOMANYREQUESTS
    assert sleeps and sleeps[0] == POLL_FIRST_S
