"""The metadata store contract, run against every adapter.

Each test here runs once per adapter (``sqlite``: a file in the test's
directory; ``firestore``: the real emulator, emptied before each test), so
the embedded and the serverless registry can never drift apart. Adapter
specifics (Firestore's TTL fields, document layout, cross-process races)
live in the adapter's own test module.

Times are explicit ``now`` values, never the clock: the lease rule only
compares the times it is given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from metastore.port import MetadataStore
from metastore.records import (
    BuildError,
    BuildRecord,
    BuildState,
    Claim,
    ImageRecord,
    LayerRecord,
    StoredManifest,
)
from ocimodel.mediatypes import MediaType
from tests.support.firestore_emulator import FirestoreEmulator, session_emulator

NOW = 1_800_000_000.0
LEASE_S = 30.0
FAILURE_TTL_S = 60.0
KEY = "3f" * 32


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> FirestoreEmulator:
    return session_emulator(request)


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    if request.param == "sqlite":
        from metastore.sqlite import SqliteMetadataStore

        yield SqliteMetadataStore(tmp_path / "metadata.sqlite3")
        return
    from metastore.firestore import FirestoreMetadataStore

    emulator: FirestoreEmulator = request.getfixturevalue("emulator")
    emulator.reset()
    yield FirestoreMetadataStore(emulator.client(), prefix="contract-")


def claim(
    store: MetadataStore,
    build_id: str,
    now: float = NOW,
    *,
    key: str = KEY,
    image_gone: bool = False,
) -> Claim:
    return store.claim_build(
        cache_key=key,
        build_id=build_id,
        image="shell/hello:latest",
        spec='{"packages": ["hello"]}',
        now=now,
        lease_s=LEASE_S,
        failure_ttl_s=FAILURE_TTL_S,
        image_gone=image_gone,
    )


def manifest(media_type: str, marker: str) -> StoredManifest:
    return StoredManifest(media_type, f'{{"mediaType":"{media_type}","m":"{marker}"}}'.encode())


def image_of(key: str, marker: str = "a") -> ImageRecord:
    # Deliberately not in media-type order: stores answer in media-type order.
    return ImageRecord(
        key,
        (manifest(MediaType.OCI_MANIFEST, marker), manifest(MediaType.DOCKER_MANIFEST, marker)),
    )


def complete(store: MetadataStore, build_id: str, image: ImageRecord, now: float) -> None:
    store.complete_build(
        build_id,
        image,
        now=now,
        timings={"realise": 1.5, "layers": 2.0},
        closure_size=12345,
        layer_count=3,
        log_tail="built",
    )


def fail(store: MetadataStore, build_id: str, now: float, message: str = "no such package") -> None:
    store.fail_build(
        build_id,
        BuildError("MANIFEST_UNKNOWN", message, {"missing": ["nosuch"]}),
        now=now,
        timings={"resolve": 0.25},
        log_tail="error: undefined variable 'nosuch'",
    )


def build(store: MetadataStore, build_id: str) -> BuildRecord:
    record = store.get_build(build_id)
    assert record is not None, build_id
    return record


# -- images, manifests, layers -------------------------------------------------
def test_nothing_is_found_in_an_empty_store(store: MetadataStore) -> None:
    assert store.get_image(KEY) is None
    assert store.get_manifest("sha256:" + "0" * 64) is None
    assert store.get_layer("layer") is None
    assert store.get_build("no-such-build") is None
    assert list(store.recent_builds(10)) == []


def test_a_completed_image_is_found_by_key_and_its_manifests_by_digest(
    store: MetadataStore,
) -> None:
    assert claim(store, "b1").won
    image = image_of(KEY)
    complete(store, "b1", image, NOW + 5)

    found = store.get_image(KEY)
    assert found is not None
    assert found.cache_key == KEY
    assert found.build_id == "b1"
    assert [m.media_type for m in found.manifests] == sorted(m.media_type for m in image.manifests)
    assert set(found.manifests) == set(image.manifests)
    for stored in image.manifests:
        assert store.get_manifest(stored.digest) == stored
        assert found.manifest(stored.media_type) == stored


def test_images_sharing_a_manifest_keep_it(store: MetadataStore) -> None:
    other = "4a" * 32
    assert claim(store, "b1").won
    assert claim(store, "b2", key=other).won
    complete(store, "b1", image_of(KEY, "same"), NOW + 1)
    complete(store, "b2", image_of(other, "same"), NOW + 2)
    first, second = store.get_image(KEY), store.get_image(other)
    assert first is not None and second is not None
    assert first.manifests == second.manifests
    assert (first.build_id, second.build_id) == ("b1", "b2")


def test_layers_first_writer_wins(store: MetadataStore) -> None:
    layer = LayerRecord("paths/with/slashes", "sha256:" + "a" * 64, 4096, "sha256:" + "b" * 64)
    store.put_layer(layer)
    store.put_layer(LayerRecord(layer.key, "sha256:" + "c" * 64, 1, "sha256:" + "d" * 64))
    assert store.get_layer(layer.key) == layer
    assert store.get_layer("paths") is None


# -- claiming ------------------------------------------------------------------
def test_the_first_claim_creates_a_pending_build(store: MetadataStore) -> None:
    result = claim(store, "b1")
    assert result.won
    expected = BuildRecord(
        build_id="b1",
        cache_key=KEY,
        image="shell/hello:latest",
        state=BuildState.PENDING,
        created_at=NOW,
        updated_at=NOW,
        lease_expires_at=NOW + LEASE_S,
        spec='{"packages": ["hello"]}',
    )
    assert result.build == expected
    assert build(store, "b1") == expected


def test_claims_within_the_lease_follow_the_live_build(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    later = claim(store, "b2", NOW + LEASE_S - 1)
    assert not later.won
    assert later.build.build_id == "b1"
    assert store.get_build("b2") is None


def test_keys_are_independent(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    assert claim(store, "b2", key="5c" * 32).won


def test_an_expired_lease_is_taken_over(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    takeover = claim(store, "b2", NOW + LEASE_S + 1)
    assert takeover.won
    assert takeover.build.build_id == "b2"
    assert takeover.build.lease_expires_at == NOW + LEASE_S + 1 + LEASE_S
    follower = claim(store, "b3", NOW + LEASE_S + 2)
    assert (follower.won, follower.build.build_id) == (False, "b2")
    assert build(store, "b1").state is BuildState.PENDING  # the old record stays for reading


def test_heartbeat_marks_running_and_extends_the_lease(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    store.heartbeat("b1", now=NOW + 20, lease_s=LEASE_S, timings={"resolve": 0.5})
    record = build(store, "b1")
    assert record.state is BuildState.RUNNING
    assert record.updated_at == NOW + 20
    assert record.lease_expires_at == NOW + 20 + LEASE_S
    assert record.timings == {"resolve": 0.5}
    # Past the first lease, within the extended one: still followed.
    follower = claim(store, "b2", NOW + LEASE_S + 5)
    assert (follower.won, follower.build.state) == (False, BuildState.RUNNING)
    store.heartbeat("b1", now=NOW + 25, lease_s=LEASE_S)
    assert build(store, "b1").timings == {"resolve": 0.5}  # None leaves timings alone


def test_heartbeat_never_revives_a_finished_build(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    assert claim(store, "b2", key="6d" * 32).won
    complete(store, "b1", image_of(KEY), NOW + 5)
    fail(store, "b2", NOW + 5)
    for build_id in ("b1", "b2"):
        before = build(store, build_id)
        store.heartbeat(build_id, now=NOW + 10, lease_s=LEASE_S)
        assert build(store, build_id) == before
    store.heartbeat("no-such-build", now=NOW, lease_s=LEASE_S)
    assert store.get_build("no-such-build") is None


def test_complete_records_the_outcome_and_later_claims_follow_it(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    image = image_of(KEY)
    complete(store, "b1", image, NOW + 5)
    record = build(store, "b1")
    assert record.state is BuildState.SUCCEEDED
    assert (record.updated_at, record.finished_at) == (NOW + 5, NOW + 5)
    assert record.timings == {"realise": 1.5, "layers": 2.0}
    assert (record.closure_size, record.layer_count, record.log_tail) == (12345, 3, "built")
    assert record.manifest_digest == image.manifests[0].digest
    assert record.error is None
    # Long after its lease, a succeeded build is still what the key has ...
    follower = claim(store, "b2", NOW + 10 * LEASE_S)
    assert (follower.won, follower.build.build_id) == (False, "b1")
    # ... unless the caller found the image gone.
    again = claim(store, "b3", NOW + 10 * LEASE_S, image_gone=True)
    assert (again.won, again.build.build_id) == (True, "b3")


def test_a_failure_is_remembered_for_its_ttl_then_retried(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    fail(store, "b1", NOW + 5)
    record = build(store, "b1")
    assert record.state is BuildState.FAILED
    assert record.error == BuildError(
        "MANIFEST_UNKNOWN", "no such package", {"missing": ["nosuch"]}
    )
    assert (record.updated_at, record.finished_at) == (NOW + 5, NOW + 5)
    assert record.timings == {"resolve": 0.25}
    assert record.log_tail == "error: undefined variable 'nosuch'"

    remembered = claim(store, "b2", NOW + 5 + FAILURE_TTL_S - 1)
    assert (remembered.won, remembered.build.build_id) == (False, "b1")
    assert remembered.build.error == record.error
    retried = claim(store, "b3", NOW + 5 + FAILURE_TTL_S + 1)
    assert (retried.won, retried.build.build_id) == (True, "b3")
    assert retried.build.state is BuildState.PENDING


def test_a_late_failure_never_overwrites_a_success(store: MetadataStore) -> None:
    assert claim(store, "b1").won
    complete(store, "b1", image_of(KEY), NOW + 5)
    fail(store, "b1", NOW + 6, "timed out")
    record = build(store, "b1")
    assert record.state is BuildState.SUCCEEDED
    assert record.error is None
    assert store.get_image(KEY) is not None


def test_a_late_success_replaces_a_failure(store: MetadataStore) -> None:
    # The coordinator may record a failure (say, the launch call timed out)
    # for a builder that then finishes: its image is good, so it counts.
    assert claim(store, "b1").won
    fail(store, "b1", NOW + 1, "launch timed out")
    complete(store, "b1", image_of(KEY), NOW + 5)
    assert build(store, "b1").state is BuildState.SUCCEEDED
    assert store.get_image(KEY) is not None


def test_recent_builds_newest_first(store: MetadataStore) -> None:
    for i in range(5):
        assert claim(store, f"b{i}", NOW + i, key=f"{i:02x}" * 32).won
    recent = store.recent_builds(3)
    assert [b.build_id for b in recent] == ["b4", "b3", "b2"]
    assert recent[0] == build(store, "b4")
    assert [b.build_id for b in store.recent_builds(10)] == ["b4", "b3", "b2", "b1", "b0"]


# -- concurrency ---------------------------------------------------------------
def test_concurrent_claims_have_exactly_one_winner(store: MetadataStore) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[Claim] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def contend(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            result = claim(store, f"race-{i}")
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    workers = [threading.Thread(target=contend, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    assert len(results) == threads
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    assert {r.build.build_id for r in results} == {winners[0].build.build_id}
    assert [b.build_id for b in store.recent_builds(threads)] == [winners[0].build.build_id]
