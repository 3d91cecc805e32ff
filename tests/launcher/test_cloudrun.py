"""The Cloud Run launcher against a real HTTP server speaking the Admin API.

Every call goes through ``google.cloud.run_v2`` over its REST transport to
:mod:`tests.support.fake_cloud_run`, which starts real task processes; the
tests assert on the bytes that reached the server and on the environment the
tasks saw. The stand-in task prints its environment, so no Nix is needed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import Credentials
from google.cloud import run_v2

from launcher.cloudrun import CloudRunLauncher
from launcher.port import REQUEST_VARIABLE, BuildRequest, LaunchError
from tests.launcher.conftest import FAST_RETRY, REQUEST, SLEEPER, StartFake
from tests.support.fake_cloud_run import DEFAULT_JOB, FakeCloudRun
from tests.support.procs import free_port

CLOUD_RUN_VARIABLES = {
    "CLOUD_RUN_JOB",
    "CLOUD_RUN_EXECUTION",
    "CLOUD_RUN_TASK_INDEX",
    "CLOUD_RUN_TASK_COUNT",
    "CLOUD_RUN_TASK_ATTEMPT",
}


def launcher_for(fake: FakeCloudRun, **kwargs: Any) -> CloudRunLauncher:
    kwargs.setdefault("retry", FAST_RETRY)
    return CloudRunLauncher(DEFAULT_JOB, endpoint=fake.endpoint, **kwargs)


def sent_body(fake: FakeCloudRun, index: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(fake.requests[index].body)
    return body


# -- what is sent ---------------------------------------------------------------


def test_run_request_carries_exactly_the_build_request(fake: FakeCloudRun) -> None:
    execution = launcher_for(fake).launch(REQUEST)

    assert len(fake.requests) == 1
    assert fake.requests[0].path == f"/v2/{DEFAULT_JOB}:run"
    body = sent_body(fake)
    value = body["overrides"]["containerOverrides"][0]["env"][0]["value"]
    assert body == {
        "overrides": {
            "containerOverrides": [{"env": [{"name": REQUEST_VARIABLE, "value": value}]}],
            "taskCount": 1,
        }
    }
    assert BuildRequest.from_json(value) == REQUEST
    assert execution == fake.runs[0].execution
    assert execution.startswith(f"{DEFAULT_JOB}/executions/nixery-builder-")


def test_extra_env_and_timeout_override(fake: FakeCloudRun) -> None:
    launcher = launcher_for(fake, extra_env={"NIXERY_TRACE_SAMPLED": "1"}, timeout_s=1799.2)
    launcher.launch(REQUEST)

    overrides = sent_body(fake)["overrides"]
    env = {item["name"]: item["value"] for item in overrides["containerOverrides"][0]["env"]}
    assert env == {"NIXERY_TRACE_SAMPLED": "1", REQUEST_VARIABLE: REQUEST.to_json()}
    assert overrides["timeout"] == "1800s"  # whole seconds, rounded up, never shorter
    assert overrides["taskCount"] == 1


def test_plain_http_endpoint_sends_no_credentials(fake: FakeCloudRun) -> None:
    launcher_for(fake).launch(REQUEST)
    assert fake.requests[0].authorization == ""


# -- what runs ------------------------------------------------------------------


def test_one_task_runs_with_the_request_and_cloud_run_variables(fake: FakeCloudRun) -> None:
    execution = launcher_for(fake).launch(REQUEST)

    assert fake.wait_for_tasks() == [0]
    assert fake.run_count == 1
    [task] = fake.runs[0].tasks
    seen = json.loads(task.log_text())
    assert BuildRequest.from_environ(seen) == REQUEST
    assert seen["NIXERY_FROM_JOB"] == "job-definition"  # the job's own environment stays
    assert {name: seen[name] for name in CLOUD_RUN_VARIABLES} == {
        "CLOUD_RUN_JOB": "nixery-builder",
        "CLOUD_RUN_EXECUTION": execution.rsplit("/", 1)[1],
        "CLOUD_RUN_TASK_INDEX": "0",
        "CLOUD_RUN_TASK_COUNT": "1",
        "CLOUD_RUN_TASK_ATTEMPT": "0",
    }


def test_batch_execution_has_one_task_per_index(fake: FakeCloudRun) -> None:
    execution = launcher_for(fake).start_execution({"NIXERY_BATCH": "a,b,c"}, task_count=3)

    assert sent_body(fake)["overrides"]["taskCount"] == 3
    assert fake.wait_for_tasks() == [0, 0, 0]
    seen = [json.loads(task.log_text()) for task in fake.runs[0].latest()]
    assert [env["CLOUD_RUN_TASK_INDEX"] for env in seen] == ["0", "1", "2"]
    assert {env["CLOUD_RUN_TASK_COUNT"] for env in seen} == {"3"}
    assert {env["CLOUD_RUN_EXECUTION"] for env in seen} == {execution.rsplit("/", 1)[1]}
    assert {env["NIXERY_BATCH"] for env in seen} == {"a,b,c"}


def test_launch_returns_while_the_build_runs_and_never_polls(start_fake: StartFake) -> None:
    fake = start_fake(command=SLEEPER)
    execution = launcher_for(fake).launch(REQUEST)

    [task] = fake.tasks()
    assert task.returncode is None  # returned without waiting for the execution
    assert fake.polls == []  # nor asked about the operation
    assert execution == fake.runs[0].execution


@pytest.mark.parametrize(
    ("shape", "names"),
    [
        pytest.param("metadata", "execution", id="metadata-as-cloud-run"),
        pytest.param("response", "execution", id="done-with-response"),
        pytest.param("bare", "operation", id="nothing-but-a-name"),
    ],
)
def test_execution_name_from_the_operation(start_fake: StartFake, shape: str, names: str) -> None:
    fake = start_fake(operation_shape=shape)
    name = launcher_for(fake).launch(REQUEST)
    run = fake.runs[0]
    assert name == (run.execution if names == "execution" else run.operation)
    assert fake.polls == []


def test_operation_that_failed_at_once_is_a_launch_error(start_fake: StartFake) -> None:
    fake = start_fake(operation_shape="error")
    with pytest.raises(LaunchError, match=r"could not start the execution \(code 9\)"):
        launcher_for(fake).launch(REQUEST)


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param(403, r"not allowed to run .* run\.jobs\.runWithOverrides", id="403"),
        pytest.param(404, r"builder job .* does not exist \(check NIXERY_BUILDER_JOB\)", id="404"),
        pytest.param(400, r"Cloud Run refused to run", id="400"),
    ],
)
def test_configuration_errors_fail_at_once(fake: FakeCloudRun, status: int, message: str) -> None:
    fake.fail_next(status, count=5, message=f"injected {status}")
    with pytest.raises(LaunchError, match=message) as info:
        launcher_for(fake).launch(REQUEST)
    assert f"injected {status}" in str(info.value)
    assert len(fake.requests) == 1  # not retried
    assert fake.run_count == 0


class RefreshingToken(Credentials):
    """Credentials that hand out a fixed token and count refreshes."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.token = "ya29.test-token"
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1


def test_rejected_credentials_are_refreshed_then_a_launch_error(fake: FakeCloudRun) -> None:
    fake.fail_next(401, count=10, message="injected 401")
    credentials = RefreshingToken()
    with pytest.raises(LaunchError, match=r"refused the credentials.*injected 401"):
        launcher_for(fake, credentials=credentials).launch(REQUEST)
    assert credentials.refreshes >= 1  # google-auth's own cure for a 401 came first
    assert fake.requests[0].authorization == "Bearer ya29.test-token"
    assert fake.run_count == 0


def test_unrefreshable_credentials_are_a_launch_error(fake: FakeCloudRun) -> None:
    fake.fail_next(401)  # anonymous credentials cannot be refreshed
    with pytest.raises(LaunchError, match="no usable credentials"):
        launcher_for(fake).launch(REQUEST)
    assert fake.run_count == 0


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_errors_are_retried(fake: FakeCloudRun, status: int) -> None:
    fake.fail_next(status, count=2)
    execution = launcher_for(fake).launch(REQUEST)
    assert len(fake.requests) == 3
    assert fake.run_count == 1
    assert execution == fake.runs[0].execution


def test_retries_give_up_with_a_launch_error(fake: FakeCloudRun) -> None:
    fake.fail_next(500, count=10_000)
    launcher = launcher_for(fake, retry=FAST_RETRY.with_timeout(1.0))
    with pytest.raises(LaunchError, match="gave up retrying") as info:
        launcher.launch(REQUEST)
    assert "injected 500" in str(info.value)
    assert len(fake.requests) >= 1  # how many fit in the deadline depends on the machine
    assert fake.run_count == 0


def test_unknown_job_is_not_found(fake: FakeCloudRun) -> None:
    other = "projects/nixery-test/locations/europe-west1/jobs/no-such-builder"
    launcher = CloudRunLauncher(other, endpoint=fake.endpoint, retry=FAST_RETRY)
    with pytest.raises(LaunchError, match=f"builder job {other} does not exist"):
        launcher.launch(REQUEST)


def test_unreachable_api_is_a_launch_error() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    launcher = CloudRunLauncher(DEFAULT_JOB, endpoint=endpoint, retry=FAST_RETRY.with_timeout(0.3))
    with pytest.raises(LaunchError, match=r"gave up retrying.*Connection refused"):
        launcher.launch(REQUEST)


@pytest.mark.parametrize(
    ("job", "kwargs"),
    [
        pytest.param("nixery-builder", {}, id="short-name"),
        pytest.param("projects/p/locations/europe-west1/jobs/b", {}, id="project-too-short"),
        pytest.param("projects/nixery-test/locations/eu/jobs/b", {}, id="bad-region"),
        pytest.param("projects/nixery-test/locations/europe-west1/jobs/Builder", {}, id="upper"),
        pytest.param(DEFAULT_JOB, {"timeout_s": 0.0}, id="zero-timeout"),
    ],
)
def test_bad_arguments_are_refused_up_front(job: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        CloudRunLauncher(job, **kwargs)


@pytest.mark.parametrize("task_count", [0, 10_001])
def test_task_count_out_of_range(fake: FakeCloudRun, task_count: int) -> None:
    with pytest.raises(ValueError, match="task_count"):
        launcher_for(fake).start_execution({}, task_count=task_count)
    assert fake.requests == []


# -- the client -----------------------------------------------------------------


def test_one_client_per_launcher(fake: FakeCloudRun, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[run_v2.JobsClient] = []
    real = run_v2.JobsClient

    def counting(*args: Any, **kwargs: Any) -> run_v2.JobsClient:
        client = real(*args, **kwargs)
        made.append(client)
        return client

    monkeypatch.setattr(run_v2, "JobsClient", counting)
    launcher = launcher_for(fake)
    assert made == []  # nothing is looked up before the first build

    threads = [threading.Thread(target=launcher.launch, args=(REQUEST,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    launcher.launch(REQUEST)

    assert len(made) == 1
    assert launcher.client is made[0]
    assert fake.run_count == 9
    launcher_for(fake).launch(REQUEST)
    assert len(made) == 2  # a second launcher has its own


def test_missing_credentials_are_a_launch_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Google's endpoint, and Application Default Credentials pointing nowhere.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    launcher = CloudRunLauncher(DEFAULT_JOB, retry=FAST_RETRY)
    with pytest.raises(LaunchError, match=r"no Google Cloud credentials.*missing\.json"):
        launcher.launch(REQUEST)
