"""Build concurrency limits in the coordinator, over the real SQLite store.

Two coordinators sharing one database stand for two manifest-function
instances. The launcher only records: builds stay pending with a live lease
until the test finishes them, and the clock is the test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.port import BuildRequest
from metastore.records import BuildError
from metastore.sqlite import SqliteMetadataStore
from nixspec.names import Arch
from nixspec.spec import ImageSpec, PackageSource, SourceKind
from ocimodel.errors import ErrorCode, RegistryError
from registry.builds import BuildCoordinator

START_S = 120.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.launched: list[BuildRequest] = []

    def launch(self, request: BuildRequest) -> str:
        self.launched.append(request)
        return f"recorded/{request.build_id}"


def spec(name: str) -> ImageSpec:
    source = PackageSource(SourceKind.PATH, "/pkgs", "rev")
    return ImageSpec(name, "latest", (name,), Arch.AMD64, source)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteMetadataStore]:
    yield SqliteMetadataStore(tmp_path / "metadata.sqlite3")


def coordinator(
    store: SqliteMetadataStore, clock: Clock, *, per_instance: int = 0, total: int = 0
) -> BuildCoordinator:
    return BuildCoordinator(
        metadata=store,
        launcher=Recorder(),
        wait_s=0.0,  # answer at once: the build goes on
        start_s=START_S,
        failure_ttl_s=60.0,
        clock=clock,
        sleep=lambda _: None,
        max_builds_per_instance=per_instance,
        max_builds=total,
    )


def pull(coordinator: BuildCoordinator, name: str) -> RegistryError:
    """A pull of a cold image: always a 429 here (still building, or refused)."""
    with pytest.raises(RegistryError) as error:
        coordinator.obtain(spec(name))
    assert error.value.code is ErrorCode.TOOMANYREQUESTS
    assert error.value.headers["Retry-After"].isdigit()
    return error.value


def launched(coordinator: BuildCoordinator) -> int:
    assert isinstance(coordinator.launcher, Recorder)
    return len(coordinator.launcher.launched)


def test_per_instance_limit_refuses_a_new_build_but_not_a_follower(
    store: SqliteMetadataStore,
) -> None:
    clock = Clock()
    one = coordinator(store, clock, per_instance=2)
    assert "limit" not in pull(one, "a").detail  # started, still building
    assert "limit" not in pull(one, "b").detail
    refused = pull(one, "c")
    assert refused.detail["limit"] == "NIXERY_MAX_BUILDS_PER_INSTANCE"
    assert "2 builds are running here, the limit is 2" in refused.message
    assert launched(one) == 2
    assert "limit" not in pull(one, "a").detail  # following a running build is free
    other = coordinator(store, clock, per_instance=2)
    assert "limit" not in pull(other, "c").detail  # another instance has room
    assert launched(one) == 2 and launched(other) == 1


def test_total_limit_counts_every_instance(store: SqliteMetadataStore) -> None:
    clock = Clock()
    one, two = coordinator(store, clock, total=3), coordinator(store, clock, total=3)
    pull(one, "a")
    pull(one, "b")
    pull(two, "c")
    refused = pull(two, "d")
    assert refused.detail == {"limit": "NIXERY_MAX_BUILDS", "active": 3, "max": 3}
    assert "(NIXERY_MAX_BUILDS)" in refused.message
    assert "limit" not in pull(two, "a").detail  # a follower of one's build
    assert launched(one) + launched(two) == 3


def test_finished_and_dead_builds_free_their_place(store: SqliteMetadataStore) -> None:
    clock = Clock()
    one = coordinator(store, clock, per_instance=1, total=1)
    pull(one, "a")
    assert pull(one, "b").detail["limit"] == "NIXERY_MAX_BUILDS_PER_INSTANCE"
    first = store.current_build(spec("a").cache_key)
    assert first is not None
    store.fail_build(
        first.build_id, BuildError("MANIFEST_UNKNOWN", "no"), now=clock(), timings={}, log_tail=""
    )
    pull(one, "b")  # a's build failed: b may start
    assert pull(one, "c").detail["limit"] == "NIXERY_MAX_BUILDS_PER_INSTANCE"
    clock.now += START_S + 1  # b's builder never reported: its lease is gone
    assert store.active_builds(clock()) == 0
    assert "limit" not in pull(one, "c").detail
    assert launched(one) == 3


def test_a_dead_build_is_not_taken_over_past_the_limit(store: SqliteMetadataStore) -> None:
    clock = Clock()
    one = coordinator(store, clock, total=1)
    pull(one, "a")
    clock.now += START_S + 1  # a's builder died
    pull(one, "b")  # b starts: a's lease is gone
    refused = pull(one, "a")  # taking a over would be a second build
    assert refused.detail["limit"] == "NIXERY_MAX_BUILDS"


def test_no_limits_no_counting(store: SqliteMetadataStore) -> None:
    clock = Clock()
    one = coordinator(store, clock)
    for name in "abcdefghij":
        assert "limit" not in pull(one, name).detail
    assert launched(one) == 10
