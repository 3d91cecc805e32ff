"""Crashing builders and checking what they leave behind: the fault and
concurrency tests on both stacks share these.

A :class:`Target` is one running registry seen from outside: its URL, its
metadata and blob stores opened directly (SQLite file and directory for the
embedded registry, the Firestore and GCS emulators for the serverless one),
the Nix call log, and a way to kill the builder that is running now, by PID:
the embedded registry's builders are found among the server's descendants
(``python -m builder_job``), the serverless ones are the Cloud Run fake's
running tasks. :meth:`Target.missing_blobs` is the invariant every crash
test asserts: each manifest recorded anywhere names only blobs that are
stored. :func:`running_target` starts either stack with extra settings (a
short lease, the fault hook's file) and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from blobstore.filesystem import FilesystemBlobStore
from metastore.port import MetadataStore
from metastore.records import BuildRecord
from tests.support.firestore_emulator import session_emulator
from tests.support.gcs_emulator import start_gcs_emulator
from tests.support.nixery_server import NixeryServer, start_nixery
from tests.support.serverless import ServerlessStack, start_serverless

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc, zombies excluded)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rpartition(")")[2].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z":
            parents.setdefault(int(ppid), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 300.0) -> None:
    """Poll until ``condition`` holds; a bound against hangs, not a timing claim."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.02)


def manifest_digests(data: bytes) -> list[str]:
    document = json.loads(data)
    return [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]


@dataclass
class Target:
    name: str
    url: str
    metadata: MetadataStore
    nix_log: Path
    fault_file: Path
    _kill: Callable[[], int]
    _manifests: Callable[[], list[bytes]]
    _has_blob: Callable[[str], bool]
    _runs: Callable[[], int]
    _stored: Callable[[], set[str]]
    #: Where the manifest-serving processes log (one file per process).
    request_logs: tuple[Path, ...] = ()
    #: Where builders have logged so far (embedded: they share the server's log).
    builder_logs: Callable[[], list[Path]] = list

    def pull(self, image: str, timeout_s: float = 600.0) -> requests.Response:
        return requests.get(
            f"{self.url}/v2/{image}/manifests/latest", headers={"Accept": DOCKER}, timeout=timeout_s
        )

    def realisations(self) -> int:
        try:
            lines = self.nix_log.read_text().splitlines()
        except FileNotFoundError:
            return 0
        return sum(1 for line in lines if line.startswith("nix-store --realise"))

    def kill_builders(self) -> int:
        """SIGKILL every running builder (and its process group); how many."""
        return self._kill()

    def arm(self, point: str) -> None:
        """Make the next builder reaching ``point`` kill itself (builder_job.faults)."""
        self.fault_file.write_text(point)

    def fired(self) -> bool:
        return self.fault_file.with_name(self.fault_file.name + ".fired").exists()

    def disarm(self) -> None:
        self.fault_file.unlink(missing_ok=True)
        self.fault_file.with_name(self.fault_file.name + ".fired").unlink(missing_ok=True)

    def runs(self) -> int:
        """Builders started so far (embedded: builder processes; serverless: job runs)."""
        return self._runs()

    def builds_of(self, image: str) -> list[BuildRecord]:
        """The image's build records, oldest first."""
        records = self.metadata.recent_builds(1000)
        return sorted((b for b in records if b.image == image), key=lambda b: b.created_at)

    def missing_blobs(self) -> list[str]:
        """Blobs named by any recorded manifest but not stored (must be none)."""
        missing = []
        for data in self._manifests():
            missing += [d for d in manifest_digests(data) if not self._has_blob(d)]
        return missing

    def stored_blobs(self) -> set[str]:
        """Digests of every stored blob."""
        return self._stored()


def embedded_target(server: NixeryServer, fault_file: Path) -> Target:
    from metastore.sqlite import SqliteMetadataStore

    storage = server.root / "storage"
    database = storage / "metadata.sqlite3"
    blobs = FilesystemBlobStore(storage)
    started: set[int] = set()

    def builders() -> list[int]:
        pids = [p for p in children(server.process.pid) if "builder_job" in _cmdline(p)]
        started.update(pids)
        return pids

    def kill() -> int:
        pids = builders()
        for pid in pids:  # each builder leads its own session (launcher.local)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not set(pids) & set(children(server.process.pid)), "builders gone", 30)
        return len(pids)

    def manifests() -> list[bytes]:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            return [bytes(row[0]) for row in db.execute("SELECT data FROM manifests")]

    return Target(
        name="embedded",
        url=server.url,
        metadata=SqliteMetadataStore(database),
        nix_log=server.nix_log,
        fault_file=fault_file,
        _kill=kill,
        _manifests=manifests,
        _has_blob=lambda digest: blobs.size(digest) is not None,
        _runs=lambda: len({b.build_id for b in SqliteMetadataStore(database).recent_builds(1000)}),
        _stored=lambda: {f"sha256:{p.name}" for p in (storage / "blobs" / "sha256").iterdir()},
        request_logs=(server.process.log_path,),
        builder_logs=lambda: [server.process.log_path],
    )


def serverless_target(stack: ServerlessStack, fault_file: Path) -> Target:
    from metastore.firestore import FirestoreMetadataStore

    client = stack.firestore.client()
    bucket = stack.gcs.client().bucket(stack.bucket)

    def manifests() -> list[bytes]:
        documents = client.collection(f"{stack.prefix}manifests").stream()
        return [bytes((doc.to_dict() or {})["data"]) for doc in documents]

    def has_blob(digest: str) -> bool:
        return bucket.get_blob(f"blobs/sha256/{digest.partition(':')[2]}") is not None

    return Target(
        name="serverless",
        url=stack.url,
        metadata=FirestoreMetadataStore(client, prefix=stack.prefix),
        nix_log=stack.nix_log,
        fault_file=fault_file,
        _kill=lambda: len(stack.cloud_run.kill_running()),
        _manifests=manifests,
        _has_blob=has_blob,
        _runs=lambda: stack.cloud_run.run_count,
        _stored=lambda: {
            "sha256:" + name.rpartition("/")[2]
            for name in stack.gcs.object_names(stack.bucket, "blobs/sha256/")
        },
        request_logs=tuple(f.process.log_path for f in stack.manifest_functions),
        builder_logs=lambda: [task.log_path for task in stack.cloud_run.tasks()],
    )


@contextlib.contextmanager
def running_target(
    kind: str,
    root: Path,
    request: pytest.FixtureRequest,
    env: Mapping[str, str],
    *,
    manifest_processes: int = 1,
) -> Iterator[Target]:
    """The ``embedded`` or ``serverless`` registry serving tests/pkgs with
    ``env`` added to every process's environment; ``NIXERY_FAULT_FILE``, if
    given, is the target's fault file."""
    from tests.conftest import PKGS

    fault_file = Path(env.get("NIXERY_FAULT_FILE", root / "fault"))
    if kind == "embedded":
        server = start_nixery(root / "registry", {"NIXERY_PKGS_PATH": str(PKGS), **env})
        try:
            yield embedded_target(server, fault_file)
        finally:
            server.stop()
        return
    gcs = start_gcs_emulator(root / "gcs")
    try:
        stack = start_serverless(
            root / "stack",
            gcs=gcs,
            firestore=session_emulator(request),
            pkgs_path=PKGS,
            manifest_processes=manifest_processes,
            extra_env=env,
        )
        try:
            yield serverless_target(stack, fault_file)
        finally:
            stack.stop()
    finally:
        gcs.stop()
