"""Builds as local subprocesses: the embedded default.

Runs ``python -m builder_job`` with the server's environment plus the
request in ``NIXERY_BUILD_REQUEST``: the same entry point and hand-over as a
Cloud Run job execution. The subprocess gets its own session so a server
shutdown does not kill a build half-way (the next pull would find a complete
image or an expired lease, never a half-written one). A daemon thread reaps
each child so none lingers as a zombie.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

from launcher.port import REQUEST_VARIABLE, BuildRequest, LaunchError


class LocalLauncher:
    def __init__(
        self,
        command: Sequence[str] = (sys.executable, "-m", "builder_job"),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._command = list(command)
        self._environ = environ
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def launch(self, request: BuildRequest) -> str:
        env = dict(os.environ if self._environ is None else self._environ)
        env[REQUEST_VARIABLE] = request.to_json()
        try:
            process = subprocess.Popen(
                self._command, env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            raise LaunchError(f"cannot start the builder: {exc}") from exc
        self.processes[request.build_id] = process
        threading.Thread(target=self._reap, args=(request.build_id, process), daemon=True).start()
        return f"local/{process.pid}"

    def _reap(self, build_id: str, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self.processes.pop(build_id, None)
