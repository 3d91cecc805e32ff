"""The fake Cloud Run's data and wire format (the server is :mod:`fake_cloud_run`).

What a job run is (:class:`JobRun`, one :class:`Task` per attempt) and how
the Cloud Run Admin API v2 spells it in REST JSON: camelCase fields, int64
as strings, enums as numbers (the client asks ``enum-encoding=int``),
timestamps in RFC 3339 with a ``Z``, messages inside a ``google.protobuf.Any``
tagged by ``@type``, and errors as ``{"error": {"code", "message",
"status"}}``, from which ``google.api_core`` picks the exception by HTTP code.
:func:`check_run_body` refuses what the real API refuses, so a client sending
a misspelt field fails here as it would in production.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

EXECUTION_TYPE = "type.googleapis.com/google.cloud.run.v2.Execution"
CONDITION_RECONCILING, CONDITION_FAILED, CONDITION_SUCCEEDED = 2, 3, 4  # Condition.State
FAILED_PRECONDITION = 9  # google.rpc.Code of a failed execution's operation
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
MAX_TASK_COUNT = 10_000
_DURATION = re.compile(r"[0-9]+(?:\.[0-9]{1,9})?s")
_BODY_FIELDS = {"validateOnly", "etag", "overrides"}
_OVERRIDE_FIELDS = {"containerOverrides", "taskCount", "timeout"}
_CONTAINER_FIELDS = {"name", "args", "env", "clearArgs"}

#: What the ``:run`` answer carries: ``metadata`` as Cloud Run does (the
#: Execution, not done), ``response`` (done at once with the Execution),
#: ``bare`` (neither: only the operation's name names anything) or ``error``
#: (done at once with a FAILED_PRECONDITION error).
OperationShape = Literal["metadata", "response", "bare", "error"]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@dataclass
class Task:
    """One attempt of one task: a real process and its log file."""

    index: int
    attempt: int
    env: dict[str, str]
    popen: subprocess.Popen[bytes]
    log_path: Path
    returncode: int | None = None  # set once the process is reaped
    killed: bool = False  # by kill_running() or stop()
    timed_out: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class JobRun:
    """One accepted ``:run``: its names, what was asked, every task attempt."""

    job: str  # full names
    execution: str
    operation: str
    query: str
    body: dict[str, Any]
    env: dict[str, str]  # the overridden variables
    args: list[str]
    task_count: int
    timeout_s: float | None
    create_time: str
    tasks: list[Task] = field(default_factory=list)
    completion_time: str = ""

    def latest(self) -> list[Task]:
        """The current attempt of each task index."""
        current = {task.index: task for task in self.tasks}  # later attempts win
        return [current[i] for i in sorted(current)]


def error_json(status: int, message: str) -> tuple[int, dict[str, Any]]:
    name = STATUS_NAMES.get(status, "UNKNOWN")
    return status, {"error": {"code": status, "message": message, "status": name}}


def execution_json(run: JobRun) -> dict[str, Any]:
    """The Execution as ``get_execution`` answers it (call under the fake's lock)."""
    latest = run.latest()
    running = sum(t.returncode is None for t in latest)
    succeeded = sum(t.returncode == 0 for t in latest)
    failed = len(latest) - running - succeeded
    if running:
        state = CONDITION_RECONCILING
    else:
        state = CONDITION_FAILED if failed else CONDITION_SUCCEEDED
    answer: dict[str, Any] = {
        "name": run.execution,
        "uid": run.operation.rsplit("/", 1)[1],
        "job": run.job.rsplit("/", 1)[1],
        "generation": "1",
        "createTime": run.create_time,
        "startTime": run.create_time,
        "parallelism": run.task_count,
        "taskCount": run.task_count,
        "reconciling": bool(running),
        "conditions": [{"type": "Completed", "state": state}],
        "runningCount": running,
        "succeededCount": succeeded,
        "failedCount": failed,
        "retriedCount": len(run.tasks) - len(latest),
    }
    if run.completion_time:
        answer["completionTime"] = run.completion_time
    return answer


def operation_json(
    run: JobRun, shape: OperationShape = "metadata", *, first: bool = False
) -> dict[str, Any]:
    """The long-running operation of ``run``; ``first`` for the ``:run``
    answer, which Cloud Run never sends done (even if a task has ended)."""
    execution = {"@type": EXECUTION_TYPE, **execution_json(run)}
    answer: dict[str, Any] = {"name": run.operation}
    if shape == "bare":
        return {**answer, "done": False}
    if shape == "response":
        return {**answer, "done": True, "response": execution}
    if shape == "error":
        error = {"code": FAILED_PRECONDITION, "message": "injected"}
        return {**answer, "done": True, "error": error}
    answer["metadata"] = execution
    answer["done"] = not first and not execution["reconciling"]
    if answer["done"] and execution["failedCount"]:
        answer["error"] = {"code": FAILED_PRECONDITION, "message": f"{run.execution} failed"}
    elif answer["done"]:
        answer["response"] = execution
    return answer


def check_run_body(body: Any) -> str:
    """What the real API would refuse in a ``RunJobRequest`` body ("" if nothing)."""
    if not isinstance(body, dict) or not isinstance(body.get("overrides", {}), dict):
        return "the body and its overrides must be JSON objects"
    overrides = body.get("overrides", {})
    unknown = (set(body) - _BODY_FIELDS) | (set(overrides) - _OVERRIDE_FIELDS)
    for container in overrides.get("containerOverrides", []):
        unknown |= set(container) - _CONTAINER_FIELDS
        for item in container.get("env", []):
            if not isinstance(item.get("name"), str) or not item["name"]:
                return "every env override needs a name"
            unknown |= set(item) - {"name", "value"}
    if unknown:
        return f"Invalid JSON payload received. Unknown name(s): {sorted(unknown)}"
    count = overrides.get("taskCount", 1)
    if not isinstance(count, int) or not 0 < count <= MAX_TASK_COUNT:
        return f"taskCount must be 1 to {MAX_TASK_COUNT}, not {count!r}"
    timeout = overrides.get("timeout")
    if timeout is not None and not (isinstance(timeout, str) and _DURATION.fullmatch(timeout)):
        return f"timeout must be a duration like '600s', not {timeout!r}"
    return ""
