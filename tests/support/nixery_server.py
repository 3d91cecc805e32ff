"""The embedded registry as a real process, as a user runs it.

:func:`start_nixery` runs ``nixery serve`` on a free port with its own
storage and work directories, and puts a directory of logging shims for the
Nix commands first on its ``PATH``: every Nix invocation by the server or the
builder subprocesses it launches is appended to ``nix-calls.log`` before the
real command runs. That is how tests count Nix invocations (a warm pull must
cause none; twenty concurrent cold pulls exactly one build).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.procs import ServerProcess, free_port, http_ok, start_server, wait_until

NIX_COMMANDS = ("nix", "nix-build", "nix-instantiate", "nix-store")


def make_nix_shims(directory: Path, log: Path) -> None:
    """Shims that log ``<command> <args>`` (one line) then exec the real one."""
    directory.mkdir(parents=True, exist_ok=True)
    for command in NIX_COMMANDS:
        real = shutil.which(command)
        if real is None:
            continue
        shim = directory / command
        shim.write_text(
            f'#!/bin/sh\nprintf "%s\\n" "{command} $1 $2" >> "{log}"\nexec "{real}" "$@"\n'
        )
        shim.chmod(0o755)


@dataclass
class NixeryServer:
    url: str
    host: str  # host:port, for image references
    root: Path
    process: ServerProcess
    nix_log: Path

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=120, **kwargs)  # type: ignore[arg-type]

    def head(self, path: str, **kwargs: object) -> requests.Response:
        return requests.head(self.url + path, timeout=120, **kwargs)  # type: ignore[arg-type]

    def nix_calls(self) -> list[str]:
        try:
            return self.nix_log.read_text().splitlines()
        except FileNotFoundError:
            return []

    def builds(self) -> list[str]:
        """Nix realisations run so far (one per image build that got that far)."""
        return [c for c in self.nix_calls() if c.startswith("nix-store --realise")]

    def stop(self) -> None:
        self.process.stop()


def start_nixery(root: Path, env: Mapping[str, str], *, workers: int = 2) -> NixeryServer:
    root.mkdir(parents=True, exist_ok=True)
    shims = root / "nix-shims"
    nix_log = root / "nix-calls.log"
    make_nix_shims(shims, nix_log)
    port = free_port()
    full_env = {
        **os.environ,
        "PATH": f"{shims}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "STORAGE_PATH": str(root / "storage"),
        "NIXERY_WORK_DIR": str(root / "work"),
        **env,
    }
    for name in ("NIXERY_CHANNEL", "NIXERY_PKGS_REPO", "NIXERY_PKGS_PATH"):
        if name not in env:
            full_env.pop(name, None)
    nixery = Path(sys.executable).parent / "nixery"
    process = start_server(
        "nixery serve",
        [nixery, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        root / "server.log",
        env=full_env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(url + "/v2/"), process, what="answering /v2/", timeout=30)
    except BaseException:
        process.stop()
        raise
    return NixeryServer(url, f"127.0.0.1:{port}", root, process, nix_log)
