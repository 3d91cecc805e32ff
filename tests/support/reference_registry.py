"""Debian's ``docker-registry`` (CNCF distribution 2.8) as a reference server.

Filesystem storage in the test's temporary directory, bound to 127.0.0.1 on a
free port, stopped by PID.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.procs import (
    ProcessFailure,
    ServerProcess,
    free_port,
    http_ok,
    start_server,
    wait_until,
)

CONFIG = """version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
"""


@dataclass
class DockerRegistry:
    """``docker-registry serve CONFIG`` under ``workdir``."""

    workdir: Path
    port: int = 0
    server: ServerProcess | None = field(default=None, init=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the form image references use."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "docker-registry.log"

    def start(self, timeout: float = 30.0, attempts: int = 3) -> Self:
        """Start on a free port (retrying if another process grabbed it)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            self.port = free_port()
            config = self.workdir / "config.yml"
            config.write_text(CONFIG.format(root=self.workdir / "storage", port=self.port))
            self.server = start_server(
                "docker-registry", ["docker-registry", "serve", config], self.log_path
            )
            try:
                wait_until(
                    lambda: http_ok(f"{self.url}/v2/"),
                    self.server,
                    what="answering GET /v2/",
                    timeout=timeout,
                )
                return self
            except ProcessFailure:
                self.server.stop()
                if attempt == attempts - 1 or "address already in use" not in (
                    self.server.log_tail()
                ):
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
