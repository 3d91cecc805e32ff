"""Metadata in one SQLite file (`metastore.sqlite`): a real file per test.

The claim rule is driven through scenarios (a sequence of store operations
at explicit times, then one more claim); races are real threads and real
processes sharing the file.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from metastore.records import (
    BuildError,
    BuildState,
    Claim,
    ImageRecord,
    LayerRecord,
    StoredManifest,
)
from metastore.sqlite import SqliteMetadataStore
from ocimodel.mediatypes import MediaType

KEY = "k" * 64
LEASE_S = 30.0
FAILURE_TTL_S = 60.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> SqliteMetadataStore:
    return SqliteMetadataStore(tmp_path / "db" / "metadata.sqlite3")


def claim(
    store: SqliteMetadataStore,
    build_id: str,
    now: float,
    *,
    key: str = KEY,
    image_gone: bool = False,
) -> Claim:
    return store.claim_build(
        cache_key=key,
        build_id=build_id,
        image="hello:latest",
        spec='{"name":"hello"}',
        now=now,
        lease_s=LEASE_S,
        failure_ttl_s=FAILURE_TTL_S,
        image_gone=image_gone,
    )


def image_for(build_id: str, key: str = KEY) -> ImageRecord:
    return ImageRecord(
        key,
        (
            StoredManifest(str(MediaType.DOCKER_MANIFEST), f"docker {build_id}".encode()),
            StoredManifest(str(MediaType.OCI_MANIFEST), f"oci {build_id}".encode()),
        ),
        build_id,
    )


@dataclass(frozen=True)
class Step:
    action: str  # claim | heartbeat | fail | complete
    build_id: str
    now: float
    image_gone: bool = False


def run(store: SqliteMetadataStore, step: Step) -> None:
    if step.action == "claim":
        claim(store, step.build_id, step.now, image_gone=step.image_gone)
    elif step.action == "heartbeat":
        store.heartbeat(step.build_id, now=step.now, lease_s=LEASE_S)
    elif step.action == "fail":
        store.fail_build(
            step.build_id,
            BuildError("MANIFEST_UNKNOWN", "hullo: not found"),
            now=step.now,
            timings={},
            log_tail="",
        )
    elif step.action == "complete":
        store.complete_build(
            step.build_id,
            image_for(step.build_id),
            now=step.now,
            timings={},
            closure_size=1,
            layer_count=1,
            log_tail="",
        )
    else:
        raise AssertionError(step.action)


SCENARIOS = [
    pytest.param([], Step("claim", "new", 0), True, "new", BuildState.PENDING, id="empty-take"),
    pytest.param(
        [Step("claim", "b1", 0)],
        Step("claim", "new", 10),
        False,
        "b1",
        BuildState.PENDING,
        id="follow-pending",
    ),
    pytest.param(
        [Step("claim", "b1", 0)],
        Step("claim", "new", 29.9),
        False,
        "b1",
        BuildState.PENDING,
        id="follow-until-lease-ends",
    ),
    pytest.param(
        [Step("claim", "b1", 0)],
        Step("claim", "new", 30),
        True,
        "new",
        BuildState.PENDING,
        id="take-over-expired-lease",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("heartbeat", "b1", 20)],
        Step("claim", "new", 49),
        False,
        "b1",
        BuildState.RUNNING,
        id="heartbeat-extends-lease",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("heartbeat", "b1", 20)],
        Step("claim", "new", 50),
        True,
        "new",
        BuildState.PENDING,
        id="take-over-after-heartbeats-stop",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("fail", "b1", 5)],
        Step("claim", "new", 64.9),
        False,
        "b1",
        BuildState.FAILED,
        id="failure-remembered",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("fail", "b1", 5)],
        Step("claim", "new", 65),
        True,
        "new",
        BuildState.PENDING,
        id="failure-ttl-over-retry",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("complete", "b1", 5)],
        Step("claim", "new", 1e9),
        False,
        "b1",
        BuildState.SUCCEEDED,
        id="success-followed-forever",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("complete", "b1", 5)],
        Step("claim", "new", 6, image_gone=True),
        True,
        "new",
        BuildState.PENDING,
        id="success-but-image-gone",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("complete", "b1", 5), Step("fail", "b1", 6)],
        Step("claim", "new", 7),
        False,
        "b1",
        BuildState.SUCCEEDED,
        id="late-failure-never-overwrites-success",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("fail", "b1", 5), Step("heartbeat", "b1", 6)],
        Step("claim", "new", 10),
        False,
        "b1",
        BuildState.FAILED,
        id="heartbeat-never-revives-a-failure",
    ),
    pytest.param(
        [Step("claim", "b1", 0), Step("claim", "b2", 31), Step("fail", "b1", 32)],
        Step("claim", "new", 33),
        False,
        "b2",
        BuildState.PENDING,
        id="newest-build-is-current",
    ),
    pytest.param(
        [
            Step("claim", "b1", 0),
            Step("complete", "b1", 5),
            Step("claim", "b2", 6, image_gone=True),
        ],
        Step("claim", "new", 7),
        False,
        "b2",
        BuildState.PENDING,
        id="rebuild-after-image-gone-is-followed",
    ),
]


@pytest.mark.parametrize(("steps", "final", "won", "followed", "state"), SCENARIOS)
def test_claim_scenarios(
    store: SqliteMetadataStore,
    steps: list[Step],
    final: Step,
    won: bool,
    followed: str,
    state: BuildState,
) -> None:
    for step in steps:
        run(store, step)
    result = claim(store, final.build_id, final.now, image_gone=final.image_gone)
    assert result.won is won
    assert result.build.build_id == followed
    assert result.build.state is state
    stored = store.get_build(followed)
    assert stored is not None
    assert stored.state is state


def test_won_claim_is_stored_as_returned(store: SqliteMetadataStore) -> None:
    result = claim(store, "b1", 100.0)
    assert result.won
    assert store.get_build("b1") == result.build
    assert result.build.lease_expires_at == 100.0 + LEASE_S
    assert result.build.spec == '{"name":"hello"}'
    assert result.build.image == "hello:latest"


def test_keys_are_independent(store: SqliteMetadataStore) -> None:
    assert claim(store, "b1", 0, key="a" * 64).won
    assert claim(store, "b2", 0, key="b" * 64).won
    assert not claim(store, "b3", 1, key="a" * 64).won


def test_failure_is_stored_with_its_error(store: SqliteMetadataStore) -> None:
    claim(store, "b1", 0)
    error = BuildError("MANIFEST_UNKNOWN", "hullo: not found", detail={"missing": ["hullo"]})
    store.fail_build("b1", error, now=7.0, timings={"eval": 1.5}, log_tail="error: ...")
    record = store.get_build("b1")
    assert record is not None
    assert record.state is BuildState.FAILED
    assert record.error == error
    assert record.finished_at == 7.0
    assert record.timings == {"eval": 1.5}
    assert record.log_tail == "error: ..."
    followed = claim(store, "b2", 8.0)
    assert followed.build.error == error


def test_complete_stores_image_manifests_and_build_outcome(store: SqliteMetadataStore) -> None:
    claim(store, "b1", 0)
    store.heartbeat("b1", now=2.0, lease_s=LEASE_S, timings={"eval": 1.0})
    running = store.get_build("b1")
    assert running is not None
    assert (running.state, running.timings) == (BuildState.RUNNING, {"eval": 1.0})
    image = image_for("b1")
    store.complete_build(
        "b1",
        image,
        now=9.0,
        timings={"eval": 1.0, "pack": 2.0},
        closure_size=123,
        layer_count=4,
        log_tail="done",
    )
    assert store.get_image(KEY) == image
    for manifest in image.manifests:
        assert store.get_manifest(manifest.digest) == manifest
    record = store.get_build("b1")
    assert record is not None
    assert record.state is BuildState.SUCCEEDED
    assert record.finished_at == 9.0
    assert (record.closure_size, record.layer_count, record.log_tail) == (123, 4, "done")
    assert record.timings == {"eval": 1.0, "pack": 2.0}
    assert record.manifest_digest == image.manifests[0].digest


def test_nothing_is_found_in_an_empty_store(store: SqliteMetadataStore) -> None:
    assert store.get_image(KEY) is None
    assert store.get_manifest("sha256:" + "0" * 64) is None
    assert store.get_layer("x") is None
    assert store.get_build("b1") is None
    assert store.recent_builds(10) == []


def test_layers_first_writer_wins(store: SqliteMetadataStore) -> None:
    first = LayerRecord("paths", "sha256:" + "1" * 64, 10, "sha256:" + "2" * 64)
    store.put_layer(first)
    store.put_layer(LayerRecord("paths", "sha256:" + "3" * 64, 11, "sha256:" + "4" * 64))
    assert store.get_layer("paths") == first


def test_recent_builds_newest_first_and_limited(store: SqliteMetadataStore) -> None:
    for i in range(5):
        claim(store, f"b{i}", float(i), key=f"{i}" * 64)
    assert [b.build_id for b in store.recent_builds(3)] == ["b4", "b3", "b2"]


def test_data_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite3"
    first = SqliteMetadataStore(path)
    claim(first, "b1", 0)
    first.complete_build(
        "b1", image_for("b1"), now=1, timings={}, closure_size=0, layer_count=0, log_tail=""
    )
    second = SqliteMetadataStore(path)
    assert second.get_image(KEY) == image_for("b1")
    assert not claim(second, "b2", 2).won


def test_database_runs_in_wal_mode(store: SqliteMetadataStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_an_exception_inside_a_claim_rolls_back(
    store: SqliteMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import metastore.sqlite as module

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "new_build", broken)
    with pytest.raises(RuntimeError):
        claim(store, "b1", 0)
    monkeypatch.undo()
    assert store.get_build("b1") is None
    assert claim(store, "b2", 0).won  # the write lock was released


# -- races ------------------------------------------------------------------------


def test_threads_claiming_one_key_have_exactly_one_winner(store: SqliteMetadataStore) -> None:
    count = 12
    barrier = threading.Barrier(count)
    results: list[Claim] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            result = claim(store, f"t{i}", 100.0)
            with lock:
                results.append(result)
        except BaseException as exc:  # reported below, with the others
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == count
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    assert {r.build.build_id for r in results} == {winners[0].build.build_id}
    assert len(store.recent_builds(100)) == 1


CLAIMER = """
import pathlib, sys, time
from metastore.sqlite import SqliteMetadataStore
path, build_id, go = sys.argv[1:4]
store = SqliteMetadataStore(pathlib.Path(path))
deadline = time.monotonic() + 20
while not pathlib.Path(go).exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)
claim = store.claim_build(
    cache_key="race", build_id=build_id, image="hello", spec="{}",
    now=100.0, lease_s=30.0, failure_ttl_s=60.0,
)
print(claim.won, claim.build.build_id)
"""


def test_processes_claiming_one_key_have_exactly_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "metadata.sqlite3"
    store = SqliteMetadataStore(path)  # the schema exists before the race
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO)]),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(path), f"p{i}", str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(6)
    ]
    time.sleep(0.3)  # let them start and wait for the signal
    go.touch()
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        outputs.append(out.split())
    winners = [build_id for won, build_id in outputs if won == "True"]
    assert len(winners) == 1
    assert {build_id for _, build_id in outputs} == set(winners)
    assert [b.build_id for b in store.recent_builds(100)] == winners
