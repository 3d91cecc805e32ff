"""The Firestore adapter against the real emulator: what only it has.

The shared semantics (claim, follow, take-over, failure TTL, heartbeat,
complete, fail, recent builds, layers, manifests, a threaded race) are in
test_contract.py, run against both adapters. Here: the document layout, the
TTL fields (the emulator never deletes, so the tests read ``expire_at``), a
claim race between two processes, the settings and the wiring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from metastore.firestore import FirestoreMetadataStore
from metastore.firestore_schema import INDEX_EXEMPTIONS, TTL_FIELDS, doc_id
from metastore.records import BuildError, BuildState, ImageRecord, LayerRecord, StoredManifest
from ocimodel.mediatypes import MediaType
from registry.settings import ConfigError, Settings
from tests.support.crash import wait_for
from tests.support.firestore_emulator import (
    FirestoreEmulator,
    group_members,
    running_emulator,
    session_emulator,
)

NOW = 1_800_000_000.0
LEASE_S = 30.0
FAILURE_TTL_S = 60.0
RETENTION_S = 3600.0
PREFIX = "t-"
KEY = "7e" * 32
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> FirestoreEmulator:
    return session_emulator(request)


@pytest.fixture
def store(emulator: FirestoreEmulator) -> FirestoreMetadataStore:
    emulator.reset()
    return FirestoreMetadataStore(emulator.client(), prefix=PREFIX, retention_s=RETENTION_S)


def claim(store: FirestoreMetadataStore, build_id: str, now: float = NOW, key: str = KEY) -> bool:
    return store.claim_build(
        cache_key=key,
        build_id=build_id,
        image="hello:latest",
        spec="{}",
        now=now,
        lease_s=LEASE_S,
        failure_ttl_s=FAILURE_TTL_S,
    ).won


def raw(emulator: FirestoreEmulator, collection: str, key: str) -> dict[str, Any]:
    snapshot = emulator.client().collection(PREFIX + collection).document(doc_id(key)).get()
    assert snapshot.exists, f"{collection}/{key}"
    data = snapshot.to_dict()
    assert data is not None
    return data


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def fail(store: FirestoreMetadataStore, build_id: str, now: float) -> None:
    store.fail_build(build_id, BuildError("UNKNOWN", "boom"), now=now, timings={}, log_tail="")


IMAGE = ImageRecord(KEY, (StoredManifest(MediaType.OCI_MANIFEST, b'{"schemaVersion":2}'),))


# -- document IDs (pure) -------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ab" * 32, "ab" * 32),
        ("sha256:" + "0" * 64, "sha256:" + "0" * 64),
        ("a/b", "a%2Fb"),
        ("100%", "100%25"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("__name__", "%5F%5Fname%5F%5F"),
        ("_x_", "_x_"),
    ],
)
def test_document_ids(key: str, expected: str) -> None:
    assert doc_id(key) == expected


def test_an_empty_key_has_no_document() -> None:
    with pytest.raises(ValueError, match="empty key"):
        doc_id("")


# -- layout --------------------------------------------------------------------
@pytest.mark.integration
def test_document_layout(store: FirestoreMetadataStore, emulator: FirestoreEmulator) -> None:
    assert claim(store, "b1")
    store.complete_build(
        "b1", IMAGE, now=NOW + 5, timings={}, closure_size=1, layer_count=1, log_tail=""
    )
    store.put_layer(LayerRecord("lk", "sha256:" + "1" * 64, 10, "sha256:" + "2" * 64))

    names = {c.id for c in emulator.client().collections()}
    assert names == {PREFIX + c for c in ("manifests", "images", "layers", "builds", "leases")}
    digest = IMAGE.manifests[0].digest
    assert raw(emulator, "manifests", digest) == {
        "media_type": MediaType.OCI_MANIFEST,
        "data": b'{"schemaVersion":2}',  # a bytes field, not text
    }
    image = raw(emulator, "images", KEY)
    assert image["manifests"] == [{"media_type": MediaType.OCI_MANIFEST, "digest": digest}]
    assert image["build_id"] == "b1"
    assert raw(emulator, "leases", KEY)["build_id"] == "b1"
    assert raw(emulator, "layers", "lk")["size"] == 10
    # Every field exempted from indexing is one the adapter really writes.
    for collection, fields in INDEX_EXEMPTIONS.items():
        key = {"manifests": digest, "builds": "b1"}[collection]
        assert set(fields) <= set(raw(emulator, collection, key))


@pytest.mark.integration
def test_prefixes_keep_registries_apart(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    other = FirestoreMetadataStore(emulator.client(), prefix="other-")
    assert claim(store, "b1")
    assert claim(other, "b2")
    assert store.get_build("b2") is None
    assert other.get_build("b1") is None


# -- TTL fields ----------------------------------------------------------------
@pytest.mark.integration
def test_every_write_of_a_build_moves_its_expiry(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    assert claim(store, "b1")
    assert raw(emulator, "builds", "b1")["expire_at"] == at(NOW + RETENTION_S)
    assert raw(emulator, "leases", KEY)["expire_at"] == at(NOW + RETENTION_S)
    store.heartbeat("b1", now=NOW + 10, lease_s=LEASE_S)
    assert raw(emulator, "builds", "b1")["expire_at"] == at(NOW + 10 + RETENTION_S)
    store.complete_build(
        "b1", IMAGE, now=NOW + 20, timings={}, closure_size=1, layer_count=1, log_tail=""
    )
    assert raw(emulator, "builds", "b1")["expire_at"] == at(NOW + 20 + RETENTION_S)
    for collection, field in TTL_FIELDS.items():  # the fields the TTL policies name exist
        for snapshot in emulator.client().collection(PREFIX + collection).stream():
            assert isinstance(snapshot.get(field), datetime), (collection, snapshot.id)


@pytest.mark.integration
def test_a_failed_builds_lease_expires_with_the_failure_ttl(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    assert claim(store, "b1")
    fail(store, "b1", NOW + 5)
    assert raw(emulator, "builds", "b1")["expire_at"] == at(NOW + 5 + RETENTION_S)
    assert raw(emulator, "leases", KEY)["expire_at"] == at(NOW + 5 + FAILURE_TTL_S)


@pytest.mark.integration
def test_a_superseded_builds_failure_leaves_the_new_lease_alone(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    assert claim(store, "b1")
    assert claim(store, "b2", NOW + LEASE_S + 1)  # b1's builder died; b2 took over
    fail(store, "b1", NOW + LEASE_S + 2)  # b1 reports late
    lease = raw(emulator, "leases", KEY)
    assert lease["build_id"] == "b2"
    assert lease["expire_at"] == at(NOW + LEASE_S + 1 + RETENTION_S)
    current = store.get_build("b2")
    assert current is not None
    assert current.state is BuildState.PENDING


@pytest.mark.integration
def test_documents_deleted_by_ttl_read_as_no_build(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    client = emulator.client()
    assert claim(store, "b1")
    client.collection(PREFIX + "builds").document("b1").delete()  # the lease now dangles
    assert claim(store, "b2", NOW + 1)
    client.collection(PREFIX + "leases").document(KEY).delete()
    assert claim(store, "b3", NOW + 2)


@pytest.mark.integration
def test_an_image_missing_a_manifest_reads_as_gone(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    assert claim(store, "b1")
    store.complete_build(
        "b1", IMAGE, now=NOW + 5, timings={}, closure_size=1, layer_count=1, log_tail=""
    )
    assert store.get_image(KEY) == ImageRecord(KEY, IMAGE.manifests, "b1")
    digest = IMAGE.manifests[0].digest
    emulator.client().collection(PREFIX + "manifests").document(digest).delete()
    assert store.get_image(KEY) is None


@pytest.mark.integration
def test_a_retried_claim_whose_commit_landed_still_wins(store: FirestoreMetadataStore) -> None:
    # A commit can succeed while its answer is lost; the retry runs the
    # transaction again with the same build id and must still report the win.
    assert claim(store, "b1")
    assert claim(store, "b1", NOW + 1)
    assert not claim(store, "b2", NOW + 2)


# -- two processes -------------------------------------------------------------
CLAIMER = textwrap.dedent(
    """
    import sys
    from metastore.firestore import FirestoreMetadataStore

    store = FirestoreMetadataStore.connect(project=sys.argv[1], prefix=sys.argv[2])
    store.get_build("warm-up")  # open the channel before the race starts
    print("ready", flush=True)
    sys.stdin.readline()
    claim = store.claim_build(
        cache_key=sys.argv[3], build_id=sys.argv[4], image="hello", spec="{}",
        now=float(sys.argv[5]), lease_s=30.0, failure_ttl_s=60.0,
    )
    print("won" if claim.won else "follow", claim.build.build_id, flush=True)
    """
)


@pytest.mark.integration
def test_two_processes_claiming_at_once_have_one_winner(
    store: FirestoreMetadataStore, emulator: FirestoreEmulator
) -> None:
    env = {**os.environ, **emulator.env, "PYTHONPATH": f"{REPO / 'shared'}:{REPO}"}
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, emulator.project, PREFIX, KEY, f"p{i}", str(NOW)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for proc in claimers:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        for proc in claimers:  # release both as close together as possible
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120) for proc in claimers]
    finally:
        for proc in claimers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in claimers] == [0, 0], [err for _, err in outputs]
    answers = [out.split() for out, _ in outputs]
    assert sorted(a[0] for a in answers) == ["follow", "won"]
    winner = next(a[1] for a in answers if a[0] == "won")
    assert {a[1] for a in answers} == {winner}
    assert [b.build_id for b in store.recent_builds(5)] == [winner]


# -- settings and wiring -------------------------------------------------------
BASE_ENV = {"NIXERY_CHANNEL": "nixos-unstable", "NIXERY_METADATA_BACKEND": "firestore"}


def test_firestore_settings_have_defaults() -> None:
    settings = Settings.from_env({**BASE_ENV, "GOOGLE_CLOUD_PROJECT": "p"})
    assert settings.gcp_project == "p"
    assert settings.firestore_database == "(default)"
    assert settings.firestore_prefix == "nixery-"
    assert settings.build_retention_s == 30 * 24 * 3600


def test_firestore_settings_name_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                **BASE_ENV,
                "NIXERY_FIRESTORE_DATABASE": "Bad_DB",
                "NIXERY_FIRESTORE_PREFIX": "a/b",
                "NIXERY_BUILD_RETENTION_S": "10",
            }
        )
    text = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 4, text
    for name in (
        "GOOGLE_CLOUD_PROJECT",
        "NIXERY_FIRESTORE_DATABASE",
        "NIXERY_FIRESTORE_PREFIX",
        "NIXERY_BUILD_RETENTION_S",
    ):
        assert name in text


def test_sqlite_needs_no_project() -> None:
    assert Settings.from_env({"NIXERY_CHANNEL": "nixos-unstable"}).metadata_backend == "sqlite"


@pytest.mark.integration
def test_wiring_builds_a_firestore_store(
    emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.wiring import metadata_store

    emulator.reset()
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({**BASE_ENV, **emulator.env, "NIXERY_FIRESTORE_PREFIX": "wired-"})
    store = metadata_store(settings)
    assert isinstance(store, FirestoreMetadataStore)
    assert store.prefix == "wired-"
    assert claim(store, "w1")
    assert {c.id for c in emulator.client().collections()} == {"wired-builds", "wired-leases"}


def test_the_embedded_registry_never_imports_google(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from registry.settings import Settings
        from registry.wiring import metadata_store
        settings = Settings.from_env({{"NIXERY_CHANNEL": "nixos-unstable",
                                       "STORAGE_PATH": {str(tmp_path)!r}}})
        metadata_store(settings).get_image("k")
        # "google" and "google.cloud" are namespace packages that .pth files
        # load at start-up; any module with code is a real import.
        loaded = [name for name, module in sys.modules.items()
                  if name.startswith(("google", "grpc")) and getattr(module, "__file__", None)]
        print(sorted(loaded))
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'shared'}:{REPO}"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- the fixture itself --------------------------------------------------------
@pytest.mark.integration
def test_stopping_the_emulator_leaves_no_process(tmp_path: Path) -> None:
    with running_emulator(tmp_path) as emulator:
        pgid = emulator.process.pid
        members = group_members(pgid)
        assert len(members) >= 2  # the gcloud wrapper and Java at least
        port = int(emulator.host.rpartition(":")[2])
        assert port in listening_ports()
    assert group_members(pgid) == []
    # Asked of the kernel's table, not by connecting: a connect to a free port
    # in the ephemeral range can pick that port as its source and self-connect.
    # A killed process's sockets are closed as it finishes exiting, a moment
    # after it stops counting as a member: a bound, not a timing claim.
    wait_for(lambda: port not in listening_ports(), "the emulator's port closed", timeout_s=10)


def listening_ports() -> set[int]:
    """Local TCP ports in the LISTEN state (0A), from /proc/net/tcp and tcp6."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                ports.add(int(fields[1].rpartition(":")[2], 16))
    return ports
