"""A small real HTTP server speaking the Cloud Run Admin API v2 for jobs.

Cloud Run has no emulator; this speaks the REST wire format that
``google.cloud.run_v2`` uses with ``transport="rest"``:

- ``POST /v2/projects/P/locations/L/jobs/J:run``: a camelCase ``RunJobRequest``
  (``overrides.containerOverrides[].env``/``args``, ``taskCount``,
  ``timeout``; unknown fields get 400, as from the real API), answered by a
  long-running Operation whose ``metadata`` is the new Execution, never done
  yet. ``@type`` is mandatory: the client unpacks the ``Any`` by it.
- ``GET /v2/.../operations/ID``: done once every task has ended, with the
  Execution as ``response``, or ``error`` code 9 (FAILED_PRECONDITION).
- ``GET /v2/.../jobs/J/executions/E`` (``ExecutionsClient.get_execution``):
  running, succeeded, failed and retried counts from the real processes.

Each run does what Cloud Run does: every task is a process of the job's
command (``python -m builder_job`` by default) with the job's base
environment, then the overridden variables, then ``CLOUD_RUN_JOB``,
``CLOUD_RUN_EXECUTION``, ``CLOUD_RUN_TASK_INDEX``, ``CLOUD_RUN_TASK_COUNT``,
``CLOUD_RUN_TASK_ATTEMPT``. A failed task is retried ``max_retries`` times
(Cloud Run's default is 3; here 0, so a crash test decides what comes next).
Tasks run in their own sessions: when a task's main process ends the rest of
its group is killed, as Cloud Run tears down the container, and so is a task
past the execution's ``timeout``. A leader is reaped only after its group is
signalled (``waitid(WNOWAIT)``), so a group id is never reused meanwhile.

Recorded for assertions: ``requests`` (every ``:run``, refused ones too),
``runs`` (accepted executions: body, overrides, task processes and their log
files) and ``polls`` (every GET). ``fail_next(403)`` makes the next ``:run``
fail; ``kill_running()`` kills every running task (the crash tests). It runs
in-process on a thread (``ThreadingHTTPServer`` on 127.0.0.1, port 0);
``stop()`` kills leftover tasks and shuts the server down. The records and
their JSON spelling live in :mod:`tests.support.fake_cloud_run_wire`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.fake_cloud_run_wire import (
    JobRun,
    OperationShape,
    Task,
    check_run_body,
    error_json,
    execution_json,
    now,
    operation_json,
)

DEFAULT_JOB = "projects/nixery-test/locations/europe-west1/jobs/nixery-builder"
BUILDER_COMMAND = (sys.executable, "-m", "builder_job")
_RUN = re.compile(r"/v2/(projects/[^/]+/locations/[^/]+/jobs/[^/:]+):run")
_EXECUTION = re.compile(r"/v2/(projects/[^/]+/locations/[^/]+/jobs/[^/]+/executions/[^/]+)")
_OPERATION = re.compile(r"/v2/(projects/[^/]+/locations/[^/]+/operations/[^/]+)")


@dataclass(frozen=True)
class RunRequest:
    path: str
    query: str
    body: bytes
    authorization: str  # the Authorization header ("" when none was sent)


@dataclass
class FakeCloudRun:
    """The server's state; build it with :func:`start_fake_cloud_run`."""

    job: str
    command: list[str]
    base_env: dict[str, str]
    log_dir: Path
    max_retries: int = 0
    operation_shape: OperationShape = "metadata"
    requests: list[RunRequest] = field(default_factory=list)
    runs: list[JobRun] = field(default_factory=list)
    polls: list[str] = field(default_factory=list)  # every GET path
    failures: list[tuple[int, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    stopping: bool = False

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def run_count(self) -> int:
        with self.lock:
            return len(self.runs)

    def fail_next(self, status: int, count: int = 1, message: str = "") -> None:
        """Answer the next ``count`` ``:run`` calls with HTTP ``status``."""
        with self.lock:
            self.failures.extend([(status, message or f"injected {status}")] * count)

    def tasks(self) -> list[Task]:
        with self.lock:
            return [task for run in self.runs for task in run.tasks]

    def kill_running(self, sig: int = signal.SIGKILL) -> list[Task]:
        """Signal every running task's process group; return once each has
        ended and been recorded (a retry may have started by then)."""
        with self.lock:
            running = [task for task in self.tasks() if task.returncode is None]
            for task in running:
                task.killed = True
                _signal_group(task.popen.pid, sig)
        for task in running:
            task.ended.wait()
        return running

    def wait_for_tasks(self, timeout_s: float = 300.0) -> list[int]:
        """Wait until no task runs (retries included); return the final exit
        codes, one per task of every run. A bound, not an assertion."""
        while True:
            pending = [task for task in self.tasks() if task.returncode is None]
            if not pending:
                with self.lock:
                    return [int(t.returncode or 0) for run in self.runs for t in run.latest()]
            for task in pending:
                if not task.ended.wait(timeout_s):
                    raise TimeoutError(f"task {task.index} of pid {task.popen.pid} still runs")

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
        self.kill_running()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join()

    def __enter__(self) -> FakeCloudRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the job's behaviour ---------------------------------------------

    def _start_run(self, job: str, query: str, body: dict[str, Any]) -> JobRun:
        overrides = body.get("overrides", {})
        env: dict[str, str] = {}
        args: list[str] = []
        for container in overrides.get("containerOverrides", []):
            env.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
            args = list(container.get("args", args))
        timeout = overrides.get("timeout")
        short_job = job.rsplit("/", 1)[1]
        short_execution = f"{short_job}-{secrets.token_hex(3)[:5]}"
        prefix = job.split("/jobs/", 1)[0]
        run = JobRun(
            job=job,
            execution=f"{job}/executions/{short_execution}",
            operation=f"{prefix}/operations/{uuid.uuid4()}",
            query=query,
            body=body,
            env=env,
            args=args,
            task_count=int(overrides.get("taskCount", 1)),
            timeout_s=float(timeout[:-1]) if timeout else None,
            create_time=now(),
        )
        with self.lock:
            try:
                for index in range(run.task_count):
                    self._start_task(run, index, attempt=0)
            except OSError:  # no half-started run: stop the tasks already started
                for task in run.tasks:
                    _signal_group(task.popen.pid, signal.SIGKILL)
                raise
            self.runs.append(run)
        return run

    def _start_task(self, run: JobRun, index: int, attempt: int) -> None:
        env = {
            **self.base_env,
            **run.env,
            "CLOUD_RUN_JOB": run.job.rsplit("/", 1)[1],
            "CLOUD_RUN_EXECUTION": run.execution.rsplit("/", 1)[1],
            "CLOUD_RUN_TASK_INDEX": str(index),
            "CLOUD_RUN_TASK_COUNT": str(run.task_count),
            "CLOUD_RUN_TASK_ATTEMPT": str(attempt),
        }
        log_path = self.log_dir / f"{env['CLOUD_RUN_EXECUTION']}-task{index}-attempt{attempt}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [*self.command, *run.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        task = Task(index, attempt, env, popen, log_path)
        run.tasks.append(task)
        threading.Thread(
            target=self._watch, args=(run, task), name=f"fake-cloud-run-{popen.pid}", daemon=True
        ).start()

    def _watch(self, run: JobRun, task: Task) -> None:
        timer = None
        if run.timeout_s is not None:
            timer = threading.Timer(run.timeout_s, self._time_out, args=(task,))
            timer.daemon = True
            timer.start()
        # Wait without reaping, so the group id stays ours while it is killed.
        os.waitid(os.P_PID, task.popen.pid, os.WEXITED | os.WNOWAIT)
        with self.lock:
            if timer is not None:
                timer.cancel()
            _signal_group(task.popen.pid, signal.SIGKILL)  # the container goes away
            task.returncode = task.popen.wait()
            if task.returncode != 0 and task.attempt < self.max_retries and not self.stopping:
                self._start_task(run, task.index, task.attempt + 1)
            if all(t.returncode is not None for t in run.tasks):
                run.completion_time = now()
        task.ended.set()

    def _time_out(self, task: Task) -> None:
        with self.lock:
            if task.returncode is None:
                task.timed_out = True
                _signal_group(task.popen.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _answer_run(state: FakeCloudRun, path: str, query: str, raw: bytes) -> tuple[int, Any]:
    """The answer to a ``POST``: refuse it as the real API would, or start a run."""
    match = _RUN.fullmatch(path)
    if match is None:
        return error_json(404, f"no such method: POST {path}")
    with state.lock:
        failure = state.failures.pop(0) if state.failures else None
    if failure is not None:
        return error_json(*failure)
    if match.group(1) != state.job:
        return error_json(404, f"Resource '{match.group(1)}' of kind 'JOB' does not exist.")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return error_json(400, "Invalid JSON payload received.")
    problem = check_run_body(body)
    if problem:
        return error_json(400, problem)
    try:
        run = state._start_run(state.job, query, body)
    except OSError as exc:  # the configured command cannot start: the test's mistake
        return error_json(500, f"cannot start the task command: {exc}")
    with state.lock:
        return 200, operation_json(run, state.operation_shape, first=True)


def _answer_get(state: FakeCloudRun, path: str) -> tuple[int, Any]:
    with state.lock:
        state.polls.append(path)
        for run in state.runs:
            if _OPERATION.fullmatch(path) and path == f"/v2/{run.operation}":
                return 200, operation_json(run)
            if _EXECUTION.fullmatch(path) and path == f"/v2/{run.execution}":
                return 200, execution_json(run)
    return error_json(404, f"Resource '{path[4:]}' was not found")


def _handler(state: FakeCloudRun) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests assert on the recorded requests, runs and polls

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if _RUN.fullmatch(path):
                request = RunRequest(path, query, raw, self.headers.get("Authorization", ""))
                with state.lock:
                    state.requests.append(request)
            self._send(*_answer_run(state, path, query, raw))

        def do_GET(self) -> None:
            self._send(*_answer_get(state, self.path.partition("?")[0]))

    return Handler


def start_fake_cloud_run(
    log_dir: Path,
    *,
    job: str = DEFAULT_JOB,
    command: Sequence[str] = BUILDER_COMMAND,
    base_env: Mapping[str, str] | None = None,
    max_retries: int = 0,
    operation_shape: OperationShape = "metadata",
) -> FakeCloudRun:
    """Serve the Cloud Run Admin API for ``job``, whose tasks run ``command``
    with ``base_env`` (this process's environment when None) plus the
    overrides; each task attempt logs to a file in ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    state = FakeCloudRun(
        job=job,
        command=list(command),
        base_env=dict(os.environ if base_env is None else base_env),
        log_dir=log_dir,
        max_retries=max_retries,
        operation_shape=operation_shape,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.server = server
    state.thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="fake-cloud-run",
        daemon=True,
    )
    state.thread.start()
    return state
