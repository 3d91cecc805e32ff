"""The fake Cloud Run Admin API behaves as Cloud Run does, seen by Google's client.

The end-to-end tests trust this server to stand in for Cloud Run, so its own
behaviour is pinned here through ``google.cloud.run_v2``: execution state from
real exit codes, the operation completing with the execution, retried task
attempts, timeouts, the task's process group torn down with it, and the
request bodies the real API would refuse.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from launcher.cloudrun import CloudRunLauncher
from tests.launcher.conftest import FAST_RETRY, REQUEST, SLEEPER, StartFake
from tests.support.crash import wait_for
from tests.support.fake_cloud_run import DEFAULT_JOB, FakeCloudRun

FAIL_WITH_3 = [sys.executable, "-c", "raise SystemExit(3)"]
Condition = run_v2.Condition


def client_options(fake: FakeCloudRun) -> dict[str, object]:
    return {
        "transport": "rest",
        "client_options": {"api_endpoint": fake.endpoint},
        "credentials": AnonymousCredentials(),  # type: ignore[no-untyped-call]
    }


def execution_of(fake: FakeCloudRun, name: str) -> run_v2.Execution:
    return run_v2.ExecutionsClient(**client_options(fake)).get_execution(name=name)  # type: ignore[arg-type]


def launch(fake: FakeCloudRun, timeout_s: float | None = None) -> str:
    launcher = CloudRunLauncher(
        DEFAULT_JOB, endpoint=fake.endpoint, retry=FAST_RETRY, timeout_s=timeout_s
    )
    return launcher.launch(REQUEST)


def test_execution_counts_follow_the_task_processes(start_fake: StartFake) -> None:
    fake = start_fake(command=SLEEPER)
    name = launch(fake)

    running = execution_of(fake, name)
    assert (running.running_count, running.succeeded_count, running.failed_count) == (1, 0, 0)
    assert running.reconciling
    assert running.task_count == 1
    assert running.job == "nixery-builder"

    [killed] = fake.kill_running()
    assert killed.killed
    assert killed.returncode == -signal.SIGKILL
    failed = execution_of(fake, name)
    assert (failed.running_count, failed.succeeded_count, failed.failed_count) == (0, 0, 1)
    assert failed.conditions[0].state == Condition.State.CONDITION_FAILED
    assert failed.completion_time


def test_succeeded_execution(fake: FakeCloudRun) -> None:
    name = launch(fake)
    assert fake.wait_for_tasks() == [0]
    done = execution_of(fake, name)
    assert (done.running_count, done.succeeded_count, done.failed_count) == (0, 1, 0)
    assert done.conditions[0].state == Condition.State.CONDITION_SUCCEEDED


def test_operation_completes_with_the_execution(fake: FakeCloudRun) -> None:
    client = run_v2.JobsClient(**client_options(fake))  # type: ignore[arg-type]
    operation = client.run_job(name=DEFAULT_JOB)
    # polls GET /v2/<operation> until done
    execution = operation.result(timeout=120)  # type: ignore[no-untyped-call]
    assert execution.name == fake.runs[0].execution
    assert execution.succeeded_count == 1
    assert fake.polls and set(fake.polls) == {f"/v2/{fake.runs[0].operation}"}


def test_failed_execution_fails_its_operation(start_fake: StartFake) -> None:
    fake = start_fake(command=FAIL_WITH_3)
    client = run_v2.JobsClient(**client_options(fake))  # type: ignore[arg-type]
    operation = client.run_job(name=DEFAULT_JOB)
    with pytest.raises(api_exceptions.FailedPrecondition):
        operation.result(timeout=120)  # type: ignore[no-untyped-call]
    assert fake.wait_for_tasks() == [3]


def test_failed_task_is_retried_with_the_next_attempt(start_fake: StartFake) -> None:
    fake = start_fake(command=SLEEPER, max_retries=1)
    name = launch(fake)

    [first] = fake.kill_running()  # a crash: Cloud Run starts attempt 1
    [second] = fake.kill_running()
    assert (first.attempt, second.attempt) == (0, 1)
    assert second.env["CLOUD_RUN_TASK_ATTEMPT"] == "1"
    assert second.env["CLOUD_RUN_TASK_INDEX"] == "0"
    assert fake.kill_running() == []  # no attempts left
    execution = execution_of(fake, name)
    assert (execution.retried_count, execution.failed_count) == (1, 1)


def test_task_past_the_timeout_is_killed(start_fake: StartFake) -> None:
    fake = start_fake(command=SLEEPER)
    launch(fake, timeout_s=0.5)  # sent as "1s"
    assert fake.wait_for_tasks() == [-signal.SIGKILL]
    assert fake.tasks()[0].timed_out


def test_task_group_is_torn_down_with_the_task(start_fake: StartFake, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    fake = start_fake(command=["sh", "-c", f"sleep 3600 & echo $! > {pid_file}"])
    launch(fake)
    assert fake.wait_for_tasks() == [0]

    grandchild = int(pid_file.read_text())

    def state() -> str:
        try:
            return Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    # killed (reaped by init, or about to be); SIGKILL lands asynchronously,
    # so a loaded machine may show it running for a moment after the kill
    wait_for(lambda: state() in {"gone", "Z"}, "the grandchild killed", timeout_s=10)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"overrides": {"taskcount": 2}}, id="misspelt-field"),
        pytest.param({"overrides": {"containerOverrides": [{"envs": []}]}}, id="unknown-field"),
        pytest.param({"overrides": {"taskCount": 0}}, id="no-tasks"),
        pytest.param({"overrides": {"timeout": 600}}, id="timeout-not-duration"),
        pytest.param({"overrides": {"containerOverrides": [{"env": [{"value": "x"}]}]}}, id="env"),
    ],
)
def test_bodies_the_real_api_refuses(fake: FakeCloudRun, body: dict[str, object]) -> None:
    answer = requests.post(f"{fake.endpoint}/v2/{DEFAULT_JOB}:run", json=body, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake.run_count == 0


def test_unknown_resources_are_not_found(fake: FakeCloudRun) -> None:
    for path in (
        f"/v2/{DEFAULT_JOB}/executions/nixery-builder-nope",
        "/v2/projects/nixery-test/locations/europe-west1/operations/nope",
    ):
        answer = requests.get(f"{fake.endpoint}{path}", timeout=30)
        assert answer.status_code == 404
        assert answer.json()["error"]["status"] == "NOT_FOUND"
