"""Builds as local subprocesses: the embedded default.

Runs ``python -m builder_job`` with the server's environment plus the
request in ``NIXERY_BUILD_REQUEST``: the same entry point and hand-over as a
Cloud Run job execution. The subprocess gets its own session so a server
shutdown does not kill a build half-way (the next pull would find a complete
image or an expired lease, never a half-written one). A daemon thread reaps
each child so none lingers as a zombie.

A batch (:meth:`LocalLauncher.launch_batch`) runs like a Cloud Run execution:
one builder process per task, each with the whole batch and its
``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT``. With ``log_dir`` each
builder writes its output to ``<log_dir>/<build id or execution>.log``
instead of the parent's terminal (the CLI's progress display owns that).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from launcher.port import BATCH_VARIABLE, REQUEST_VARIABLE, BuildBatch, BuildRequest, LaunchError


class LocalLauncher:
    def __init__(
        self,
        command: Sequence[str] = (sys.executable, "-m", "builder_job"),
        environ: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self._command = list(command)
        self._environ = environ
        self._log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def launch(self, request: BuildRequest) -> str:
        return self._start(request.build_id, {REQUEST_VARIABLE: request.to_json()})

    def launch_batch(
        self, batch: BuildBatch, task_count: int, *, timeout_s: float | None = None
    ) -> list[str]:
        """One process per task, each taking its share of the whole batch
        (``timeout_s`` is not needed: NIX_TIMEOUT and the leases bound them)."""
        name = f"batch-{secrets.token_hex(4)}"
        count = max(1, min(task_count, len(batch.requests)))
        for index in range(count):
            env = {
                BATCH_VARIABLE: batch.to_env(),
                "CLOUD_RUN_TASK_INDEX": str(index),
                "CLOUD_RUN_TASK_COUNT": str(count),
            }
            self._start(f"{name}-task{index}", env)
        return [f"local/{name}"]

    def _start(self, key: str, overrides: Mapping[str, str]) -> str:
        env = {**(os.environ if self._environ is None else self._environ), **overrides}
        try:
            if self._log_dir is None:
                process = subprocess.Popen(
                    self._command, env=env, stdin=subprocess.DEVNULL, start_new_session=True
                )
            else:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                with (self._log_dir / f"{key}.log").open("ab") as log:
                    process = subprocess.Popen(
                        self._command,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
        except OSError as exc:
            raise LaunchError(f"cannot start the builder: {exc}") from exc
        self.processes[key] = process
        threading.Thread(target=self._reap, args=(key, process), daemon=True).start()
        return f"local/{process.pid}"

    def wait_for_exit(self, build_id: str, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the builder of ``build_id`` to exit.
        False at once when no builder of that build runs from here (the caller
        sleeps instead); True after waiting, whether it exited or not."""
        process = self.processes.get(build_id)
        if process is None or process.poll() is not None:
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        return True

    def _reap(self, build_id: str, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self.processes.pop(build_id, None)
