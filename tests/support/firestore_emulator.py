"""Google's Firestore emulator, as the tests run it.

``gcloud emulators firestore start --host-port=127.0.0.1:P`` is a Python
wrapper that starts a shell script that starts Java. :func:`start_emulator`
runs it in a new session, so the wrapper's PID is the process group of all
three; :meth:`FirestoreEmulator.stop` stops that group by PID and then checks
that no member (the Java process above all) is left.

One emulator serves a whole test session (it takes about 1.3 s to start):
:func:`session_emulator` starts it on first use, keeps it in the pytest
config's stash and stops it when the session ends. Tests empty it between
them with :meth:`FirestoreEmulator.reset` (the emulator's own REST call).

The emulator keeps data in memory, applies no TTL policies and costs about
2 s per aborted transaction attempt (see ../../../shared/notes/gcp.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

import pytest
import requests

from tests.support.procs import (
    ProcessFailure,
    ServerProcess,
    free_port,
    http_ok,
    start_server,
    wait_until,
)

if TYPE_CHECKING:
    from google.cloud import firestore

PROJECT = "demo-nixery"  # "demo-" projects never reach real Google Cloud
INSTALL_HINT = (
    "needs the Firestore emulator: apt-get install google-cloud-cli "
    "google-cloud-cli-firestore-emulator openjdk-17-jre-headless"
)
STOP_GRACE_S = 10.0
_STASH_KEY = pytest.StashKey["FirestoreEmulator"]()


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes in process group ``pgid`` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised name: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rpartition(")")[2].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return sorted(members)


@dataclass
class FirestoreEmulator:
    host: str  # 127.0.0.1:P, the value of FIRESTORE_EMULATOR_HOST
    project: str
    process: ServerProcess
    _client: firestore.Client | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach this emulator."""
        return {"FIRESTORE_EMULATOR_HOST": self.host, "GOOGLE_CLOUD_PROJECT": self.project}

    def client(self) -> firestore.Client:
        """A client of this emulator, shared by the session (it is thread-safe)."""
        if self._client is None:
            from google.cloud import firestore

            # The client reads FIRESTORE_EMULATOR_HOST once, when it is made.
            with mock.patch.dict(os.environ, self.env):
                self._client = firestore.Client(project=self.project)
        return self._client

    def reset(self) -> None:
        """Delete every document of the project's default database."""
        response = requests.delete(
            f"{self.url}/emulator/v1/projects/{self.project}/databases/(default)/documents",
            timeout=30,
        )
        if response.status_code != 200:
            raise self.process.failure(f"reset answered {response.status_code}: {response.text}")

    def stop(self) -> None:
        """Stop the wrapper and its Java child by process group; check none is left."""
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
        pgid = self.process.pid
        self.process.stop(grace=STOP_GRACE_S)
        # SIGKILL is delivered asynchronously: give the group a moment to go.
        deadline = time.monotonic() + STOP_GRACE_S
        while (left := group_members(pgid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            raise ProcessFailure(f"Firestore emulator processes left after stop: {left}")


def start_emulator(log_dir: Path, project: str = PROJECT) -> FirestoreEmulator:
    """Start the emulator on a free port and wait until it answers."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        pytest.skip(INSTALL_HINT)
    sdk = Path(gcloud).resolve().parent.parent  # <sdk>/bin/gcloud
    if not (sdk / "platform" / "cloud-firestore-emulator").is_dir():
        pytest.skip(INSTALL_HINT)  # gcloud without the emulator component
    port = free_port()
    config = log_dir / "gcloud-config"  # keep gcloud's state out of the user's home
    config.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_PROJECT": project,
    }
    process = start_server(
        "firestore emulator",
        [gcloud, "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}"],
        log_dir / "firestore-emulator.log",
        env=env,
    )
    emulator = FirestoreEmulator(f"127.0.0.1:{port}", project, process)
    try:
        wait_until(
            lambda: http_ok(f"{emulator.url}/"), process, what="answering HTTP", timeout=60.0
        )
    except BaseException:
        emulator.stop()
        raise
    return emulator


@contextlib.contextmanager
def running_emulator(log_dir: Path | None = None) -> Iterator[FirestoreEmulator]:
    """An emulator for the duration of a ``with`` block."""
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="firestore-")))
        emulator = start_emulator(log_dir)
        stack.callback(emulator.stop)
        yield emulator


def session_emulator(request: pytest.FixtureRequest) -> FirestoreEmulator:
    """The session's emulator: started on first use, stopped when pytest ends.

    Kept in the config's stash rather than in one fixture so that every test
    module can declare its own fixture and still share the one process.
    """
    config = request.config
    emulator = config.stash.get(_STASH_KEY, None)
    if emulator is None:
        factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
        emulator = start_emulator(factory.mktemp("firestore-emulator"))
        config.stash[_STASH_KEY] = emulator
        config.add_cleanup(emulator.stop)
    return emulator
