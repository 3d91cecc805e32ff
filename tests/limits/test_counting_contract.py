"""What the concurrency limits read from a metadata store, on every adapter
(SQLite, and Firestore on its emulator): live builds and a key's current one."""

from __future__ import annotations

from metastore.port import MetadataStore
from metastore.records import BuildError, Claim, ImageRecord, StoredManifest
from registry.limits import BuildCounter
from tests.metastore.test_contract import emulator, store  # noqa: F401

NOW = 1_800_000_000.0


def claim(
    store: MetadataStore, key: str, build_id: str, now: float = NOW, lease_s: float = 30
) -> Claim:
    return store.claim_build(
        cache_key=key,
        build_id=build_id,
        image=f"{key}:latest",
        spec="{}",
        now=now,
        lease_s=lease_s,
        failure_ttl_s=60.0,
    )


def test_active_builds_count_live_leases_only(store: MetadataStore) -> None:
    assert isinstance(store, BuildCounter)
    assert store.active_builds(NOW) == 0
    claim(store, "a" * 64, "build-a")
    claim(store, "b" * 64, "build-b")
    claim(store, "c" * 64, "build-c", lease_s=5)
    claim(store, "d" * 64, "build-d")
    claim(store, "e" * 64, "build-e")
    assert store.active_builds(NOW) == 5
    store.heartbeat("build-a", now=NOW + 10, lease_s=30)  # running, renewed
    store.fail_build(
        "build-b", BuildError("UNAVAILABLE", "no"), now=NOW + 1, timings={}, log_tail=""
    )
    store.complete_build(
        "build-d",
        ImageRecord("d" * 64, (StoredManifest("application/json", b"{}"),)),
        now=NOW + 1,
        timings={},
        closure_size=0,
        layer_count=1,
        log_tail="",
    )
    # a (renewed), e; b failed, d succeeded, c's lease ran out at NOW + 5.
    assert store.active_builds(NOW + 6) == 2
    assert store.active_builds(NOW + 35) == 1  # e's first lease ended at NOW + 30
    assert store.active_builds(NOW + 41) == 0


def test_current_build_is_what_a_claim_decides_on(store: MetadataStore) -> None:
    assert isinstance(store, BuildCounter)
    assert store.current_build("f" * 64) is None
    claim(store, "f" * 64, "first", lease_s=5)
    current = store.current_build("f" * 64)
    assert current is not None and current.build_id == "first"
    claim(store, "f" * 64, "second", now=NOW + 10)  # took the expired one over
    current = store.current_build("f" * 64)
    assert current is not None and current.build_id == "second"
