"""Builds as Cloud Run job executions: the serverless launcher.

The builder is deployed once as a Cloud Run *job* whose container runs
``python -m builder_job``. Each build is one *execution* of that job, started
with ``JobsClient.run_job`` and per-execution overrides::

    POST /v2/projects/P/locations/L/jobs/J:run
    {"overrides": {"containerOverrides": [{"env": [
        {"name": "NIXERY_BUILD_REQUEST", "value": "{\\"build_id\\": ...}"}]}],
     "taskCount": 1, "timeout": "1800s"}}

The override env var is merged over the job's own environment (storage,
metadata, NIX_TIMEOUT stay in the job definition), so the builder reads its
request exactly as it does under :mod:`launcher.local`. ``taskCount`` is 1 for
one build; :meth:`CloudRunLauncher.start_execution` takes any count, for a batch
whose tasks split a list by ``CLOUD_RUN_TASK_INDEX``.

Not waiting
    ``run_job`` answers a long-running operation that completes only when the
    execution does, minutes later. The launcher returns as soon as Cloud Run has
    accepted the execution: the operation's metadata already names it. Whoever
    asked for the build follows the build record in the metadata store, which
    the builder writes, not the operation.

Retries
    500, 503, 504, 429 and dropped connections are retried with
    ``google.api_core.retry.Retry`` (exponential backoff with full jitter, so
    many function instances hitting the same outage do not retry in step).
    ``run_job`` is not idempotent: a 500 after Cloud Run had already created the
    execution means a retry starts a second one for the same build. That costs a
    duplicate build, never a wrong image: blobs are written create-if-absent by
    digest and both builders record the same manifest. Not retrying would fail
    the pull instead. 400, 403 and 404 are configuration errors and fail at once.

Errors
    Every failure becomes :class:`launcher.port.LaunchError` whose message says
    what to fix (the permission, the job name, the credentials).

Client
    One ``JobsClient`` per launcher (the wiring builds one launcher per
    process), created on the first launch: constructing it looks up
    credentials, and importing ``google.cloud.run_v2`` costs start-up time a
    manifest function that answers from its cache should not pay. The REST
    transport is used everywhere, so production speaks the same wire format the
    tests' fake Cloud Run Admin API checks. A plain ``http://`` endpoint can
    only be a local stand-in: the client then sends no credentials at all,
    never a real token over an unencrypted connection.
"""

from __future__ import annotations

import datetime
import math
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.auth import exceptions as auth_exceptions

from launcher.port import BATCH_VARIABLE, REQUEST_VARIABLE, BuildBatch, BuildRequest, LaunchError
from registry.settings import CLOUD_RUN_JOB_PATTERN

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.run_v2 import JobsClient

MAX_TASK_COUNT = 10_000  # Cloud Run's limit on tasks per execution
#: Transient answers worth another try (see "Retries" above).
TRANSIENT = (
    api_exceptions.InternalServerError,
    api_exceptions.ServiceUnavailable,
    api_exceptions.GatewayTimeout,
    api_exceptions.TooManyRequests,
    requests.exceptions.ConnectionError,
)
#: Up to a minute of retries: the manifest function waits for the build much
#: longer anyway, and an outage longer than this is better reported.
DEFAULT_RETRY = Retry(
    predicate=if_exception_type(*TRANSIENT),
    initial=0.5,
    maximum=8.0,
    multiplier=2.0,
    timeout=60.0,
)
REQUEST_TIMEOUT_S = 30.0  # one HTTP attempt; run_job answers in about a second


def _anonymous() -> Credentials:
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


class CloudRunLauncher:
    """Start builds as executions of the Cloud Run job ``job`` (its full name).

    ``endpoint`` overrides the API endpoint (tests point it at a local fake);
    ``extra_env`` is added to every execution's overrides; ``timeout_s``
    overrides the job's task timeout; ``retry`` replaces :data:`DEFAULT_RETRY`;
    ``credentials`` replace Application Default Credentials (anonymous for a
    plain ``http://`` endpoint).
    """

    def __init__(
        self,
        job: str,
        *,
        endpoint: str = "",
        extra_env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        retry: Retry = DEFAULT_RETRY,
        credentials: Credentials | None = None,
    ) -> None:
        if not CLOUD_RUN_JOB_PATTERN.fullmatch(job):
            raise ValueError(f"{job!r} is not projects/PROJECT/locations/REGION/jobs/JOB")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r} must be positive")
        self.job = job
        self._endpoint = endpoint
        self._extra_env = dict(extra_env or {})
        self._timeout_s = timeout_s
        self._retry = retry
        self._credentials = credentials
        self._client: JobsClient | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> JobsClient:
        """The one ``JobsClient`` of this launcher, created on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> JobsClient:
        from google.api_core.client_options import ClientOptions
        from google.cloud import run_v2

        credentials = self._credentials
        if credentials is None and self._endpoint.startswith("http://"):
            credentials = _anonymous()
        options = ClientOptions(api_endpoint=self._endpoint) if self._endpoint else None
        try:
            return run_v2.JobsClient(
                transport="rest", client_options=options, credentials=credentials
            )
        except auth_exceptions.DefaultCredentialsError as exc:
            raise LaunchError(f"no Google Cloud credentials to run the builder job: {exc}") from exc

    def launch(self, request: BuildRequest) -> str:
        """Start one execution with one task building ``request``; return its name."""
        env = {**self._extra_env, REQUEST_VARIABLE: request.to_json()}
        return self.start_execution(env, task_count=1, timeout_s=self._timeout_s)

    def launch_batch(
        self, batch: BuildBatch, task_count: int, *, timeout_s: float | None = None
    ) -> list[str]:
        """Start ``batch`` as one execution of ``task_count`` tasks (more only
        if it exceeds one variable's size; see :meth:`BuildBatch.chunks`)."""
        executions = []
        for part in batch.chunks():
            env = {**self._extra_env, BATCH_VARIABLE: part.to_env()}
            tasks = max(1, min(task_count, len(part.requests), MAX_TASK_COUNT))
            executions.append(
                self.start_execution(env, task_count=tasks, timeout_s=timeout_s or self._timeout_s)
            )
        return executions

    def start_execution(
        self, env: Mapping[str, str], *, task_count: int = 1, timeout_s: float | None = None
    ) -> str:
        """Run the job once with ``env`` overridden and ``task_count`` tasks.

        Returns the execution's full name as soon as Cloud Run has accepted it
        (the operation's name if the answer names no execution). Raises
        :class:`LaunchError`.
        """
        if not 1 <= task_count <= MAX_TASK_COUNT:
            raise ValueError(f"task_count={task_count} must be 1 to {MAX_TASK_COUNT}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s={timeout_s!r} must be positive")
        from google.cloud import run_v2

        overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[
                run_v2.RunJobRequest.Overrides.ContainerOverride(
                    env=[run_v2.EnvVar(name=name, value=value) for name, value in env.items()]
                )
            ],
            task_count=task_count,
        )
        if timeout_s is not None:
            # Cloud Run's timeout is whole seconds; round up so a limit is never shortened.
            overrides.timeout = datetime.timedelta(seconds=math.ceil(timeout_s))
        call = run_v2.RunJobRequest(name=self.job, overrides=overrides)
        operation = self._call(
            lambda: self.client.run_job(request=call, retry=self._retry, timeout=REQUEST_TIMEOUT_S)
        )
        return _execution_name(operation)

    def _call(self, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except api_exceptions.RetryError as exc:
            raise LaunchError(
                f"Cloud Run kept failing to run {self.job} (gave up retrying): {exc.cause or exc}"
            ) from exc
        except api_exceptions.Forbidden as exc:  # 403, PERMISSION_DENIED
            raise LaunchError(
                f"not allowed to run {self.job} with overrides (the caller needs "
                f"run.jobs.runWithOverrides, e.g. roles/run.developer): {exc.message}"
            ) from exc
        except api_exceptions.Unauthorized as exc:  # 401, UNAUTHENTICATED
            raise LaunchError(
                f"Cloud Run refused the credentials for {self.job}: {exc.message}"
            ) from exc
        except api_exceptions.NotFound as exc:
            raise LaunchError(
                f"the builder job {self.job} does not exist (check NIXERY_BUILDER_JOB): "
                f"{exc.message}"
            ) from exc
        except api_exceptions.BadRequest as exc:  # 400: INVALID_ARGUMENT, FAILED_PRECONDITION
            raise LaunchError(f"Cloud Run refused to run {self.job}: {exc.message}") from exc
        except api_exceptions.GoogleAPIError as exc:
            raise LaunchError(f"Cloud Run failed to run {self.job}: {exc}") from exc
        except auth_exceptions.GoogleAuthError as exc:  # a 401 the token refresh did not cure
            raise LaunchError(f"no usable credentials to run {self.job}: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            raise LaunchError(f"cannot reach the Cloud Run Admin API: {exc}") from exc


def _execution_name(operation: Any) -> str:
    """The execution an accepted ``run_job`` operation names, without polling it.

    Cloud Run puts the new Execution in the operation's metadata at once; a
    finished operation also carries it as its response. Only the raw
    ``operations_pb2.Operation`` is read: ``done()`` or ``result()`` on the
    future would poll the API.
    """
    from google.api_core.protobuf_helpers import from_any_pb
    from google.cloud import run_v2

    raw = operation.operation
    if raw.done and raw.HasField("error"):
        raise LaunchError(
            f"Cloud Run could not start the execution (code {raw.error.code}): {raw.error.message}"
        )
    for field in ("response", "metadata"):
        if raw.HasField(field):
            try:
                execution = from_any_pb(run_v2.Execution, getattr(raw, field))  # type: ignore[no-untyped-call]
            except TypeError:  # some other message type: fall back to the operation name
                continue
            if execution.name:
                return str(execution.name)
    return str(raw.name)
