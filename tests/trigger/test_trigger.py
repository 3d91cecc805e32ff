"""The prebuild trigger: ``POST /_nixery/prebuild`` with a Google-signed OIDC token.

The manifest function's handler is built from settings exactly as its
``main.py`` builds it, with the Cloud Run launcher pointed at the Admin API
fake. Tokens are signed by a key made here whose certificate a real local
HTTP server publishes in Google's format (``NIXERY_TRIGGER_CERTS_URL``).
Rejections must start nothing; the accepted request starts one execution
whose tasks split the list and whose builders really build the images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from launcher.port import BATCH_VARIABLE, BuildBatch
from ocimodel.errors import ErrorCode, RegistryError
from registry import wiring
from registry.app import manifest_handler
from registry.http import Handler
from registry.settings import Settings
from registry.trigger import MIN_REFETCH_S, CertsCache, IdentityVerifier
from tests.conftest import PKGS
from tests.support.fake_cloud_run import DEFAULT_JOB, FakeCloudRun, start_fake_cloud_run
from tests.support.oidc import CERTS_PATH, TokenIssuer, make_issuer, start_certs_server
from tests.support.static_http import StaticServer

AUDIENCE = "https://nixery.example.com/_nixery/prebuild"
SCHEDULER = "nixery-scheduler@nixery-test.iam.gserviceaccount.com"
PATH = "/_nixery/prebuild"
IMAGES = ["hello", "foo", "foobar", "sdl2", "7zz:latest"]


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return make_issuer("test-key-1")


@pytest.fixture(scope="module")
def forger() -> TokenIssuer:
    return make_issuer("test-key-1")  # the same key id, another key: a forgery


@pytest.fixture
def certs(issuer: TokenIssuer) -> Iterator[StaticServer]:
    server = start_certs_server(issuer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cloud_run(tmp_path: Path) -> Iterator[FakeCloudRun]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")}
    env.update(environment(tmp_path, ""))
    fake = start_fake_cloud_run(tmp_path / "job-logs", base_env=env)
    try:
        yield fake
    finally:
        fake.stop()


def environment(root: Path, certs_url: str, **extra: str) -> dict[str, str]:
    return {
        "NIXERY_PKGS_PATH": str(PKGS),
        "STORAGE_PATH": str(root / "storage"),
        "NIXERY_WORK_DIR": str(root / "work"),
        "NIXERY_TRIGGER_AUDIENCE": AUDIENCE,
        "NIXERY_TRIGGER_ALLOWED_SA": f"someone-else@example.com, {SCHEDULER}",
        "NIXERY_TRIGGER_CERTS_URL": certs_url,
        **extra,
    }


def handler_for(root: Path, certs: StaticServer, cloud_run: FakeCloudRun, **extra: str) -> Handler:
    env = environment(
        root,
        certs.url + CERTS_PATH,
        NIXERY_LAUNCHER="cloudrun",
        NIXERY_BUILDER_JOB=DEFAULT_JOB,
        NIXERY_CLOUD_RUN_ENDPOINT=cloud_run.endpoint,
        **extra,
    )
    return manifest_handler(Settings.from_env(env))


def post(handler: Handler, token: str | None, body: object, method: str = "POST") -> Response:
    headers = [] if token is None else [("Authorization", token)]
    builder = EnvironBuilder(
        path=PATH,
        method=method,
        data=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )
    return handler(Request(builder.get_environ()))


def error_of(response: Response) -> dict[str, str]:
    assert response.content_type == "application/json"
    errors = json.loads(response.get_data())["errors"]
    assert len(errors) == 1
    entry: dict[str, str] = errors[0]
    return entry


@pytest.fixture
def handler(tmp_path: Path, certs: StaticServer, cloud_run: FakeCloudRun) -> Handler:
    return handler_for(tmp_path, certs, cloud_run)


def rejections(issuer: TokenIssuer, forger: TokenIssuer) -> list[tuple[str, str | None, int, str]]:
    def bearer(token: str) -> str:
        return f"Bearer {token}"

    return [
        ("no token", None, 401, "UNAUTHORIZED"),
        ("empty bearer", "Bearer ", 401, "UNAUTHORIZED"),
        ("basic auth", "Basic dXNlcjpwYXNz", 401, "UNAUTHORIZED"),
        ("not a JWT", bearer("not.a.jwt"), 401, "UNAUTHORIZED"),
        (
            "expired",
            bearer(issuer.mint(audience=AUDIENCE, email=SCHEDULER, issued_ago_s=7200)),
            401,
            "UNAUTHORIZED",
        ),
        (
            "wrong audience",
            bearer(issuer.mint(audience="https://elsewhere.example.com", email=SCHEDULER)),
            401,
            "UNAUTHORIZED",
        ),
        (
            "wrong issuer",
            bearer(issuer.mint(audience=AUDIENCE, email=SCHEDULER, issuer="https://evil.test")),
            401,
            "UNAUTHORIZED",
        ),
        (
            "unverified email",
            bearer(issuer.mint(audience=AUDIENCE, email=SCHEDULER, email_verified=False)),
            401,
            "UNAUTHORIZED",
        ),
        (
            "forged signature",
            bearer(forger.mint(audience=AUDIENCE, email=SCHEDULER)),
            401,
            "UNAUTHORIZED",
        ),
        (
            "unknown key",
            bearer(make_issuer("rotated-key").mint(audience=AUDIENCE, email=SCHEDULER)),
            401,
            "UNAUTHORIZED",
        ),
        (
            "wrong service account",
            bearer(
                issuer.mint(audience=AUDIENCE, email="intruder@nixery-test.iam.gserviceaccount.com")
            ),
            403,
            "DENIED",
        ),
    ]


def test_every_wrong_token_is_refused_and_starts_nothing(
    handler: Handler,
    issuer: TokenIssuer,
    forger: TokenIssuer,
    certs: StaticServer,
    cloud_run: FakeCloudRun,
) -> None:
    for case, authorization, status, code in rejections(issuer, forger):
        response = post(handler, authorization, {"images": IMAGES})
        assert response.status_code == status, case
        error = error_of(response)
        assert error["code"] == code, case
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer "), case
    assert cloud_run.requests == []
    assert certs.count(CERTS_PATH) == 1  # cached, not fetched per request


def test_a_rotated_key_is_fetched_early_at_most_once_a_minute(
    issuer: TokenIssuer, certs: StaticServer
) -> None:
    now = [1000.0]
    verifier = IdentityVerifier(
        AUDIENCE, (SCHEDULER,), certs.url + CERTS_PATH, CertsCache(clock=lambda: now[0])
    )
    assert verifier.verify(f"Bearer {issuer.mint(audience=AUDIENCE, email=SCHEDULER)}")
    rotated = make_issuer("rotated-key")
    token = f"Bearer {rotated.mint(audience=AUDIENCE, email=SCHEDULER)}"
    with pytest.raises(RegistryError) as refused:
        verifier.verify(token)  # Google has not published it (to us) yet
    assert refused.value.code is ErrorCode.UNAUTHORIZED
    assert certs.count(CERTS_PATH) == 1  # the last fetch is too recent to refetch
    replacement = start_certs_server(issuer, rotated)
    certs.routes[CERTS_PATH] = replacement.routes[CERTS_PATH]
    replacement.stop()
    now[0] += MIN_REFETCH_S + 1
    assert verifier.verify(token) == SCHEDULER  # fetched early for the new key id
    assert certs.count(CERTS_PATH) == 2
    stranger = make_issuer("unknown-key").mint(audience=AUDIENCE, email=SCHEDULER)
    with pytest.raises(RegistryError):
        verifier.verify(f"Bearer {stranger}")
    assert certs.count(CERTS_PATH) == 2  # junk key ids cannot make us refetch per request


def test_only_post_and_a_list_of_names_are_accepted(
    handler: Handler, issuer: TokenIssuer, cloud_run: FakeCloudRun
) -> None:
    token = f"Bearer {issuer.mint(audience=AUDIENCE, email=SCHEDULER)}"
    get = post(handler, token, None, method="GET")
    assert get.status_code == 405
    assert get.headers["Allow"] == "POST"
    bodies: list[object] = [None, {}, {"images": []}, {"images": "hello"}, {"images": [1]}, ["x"]]
    for body in bodies:
        answer = post(handler, token, body)
        assert answer.status_code == 400, body
        assert error_of(answer)["code"] == "NAME_INVALID"
    bad_tasks = post(handler, token, {"images": ["hello"], "tasks": -1})
    assert bad_tasks.status_code == 400
    assert cloud_run.requests == []


def test_the_trigger_is_absent_unless_configured(
    tmp_path: Path, certs: StaticServer, cloud_run: FakeCloudRun, issuer: TokenIssuer
) -> None:
    handler = handler_for(
        tmp_path, certs, cloud_run, NIXERY_TRIGGER_AUDIENCE="", NIXERY_TRIGGER_ALLOWED_SA=""
    )
    token = f"Bearer {issuer.mint(audience=AUDIENCE, email=SCHEDULER)}"
    answer = post(handler, token, {"images": IMAGES})
    assert answer.status_code == 404
    assert error_of(answer)["code"] == "NAME_UNKNOWN"
    assert cloud_run.requests == []


@pytest.mark.nix
@pytest.mark.integration
def test_a_valid_token_starts_one_execution_whose_tasks_split_the_list(
    nix: None, tmp_path: Path, handler: Handler, issuer: TokenIssuer, cloud_run: FakeCloudRun
) -> None:
    token = f"Bearer {issuer.mint(audience=AUDIENCE, email=SCHEDULER)}"
    answer = post(handler, token, {"images": [*IMAGES, "hello:latest", "BAD"], "tasks": 2})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    body = json.loads(answer.get_data())
    assert body["caller"] == SCHEDULER
    statuses = {entry["image"]: entry["status"] for entry in body["images"]}
    assert statuses == {
        "hello:latest": "started",
        "foo:latest": "started",
        "foobar:latest": "started",
        "sdl2:latest": "started",
        "7zz:latest": "started",
        "BAD:latest": "failed",
    }
    assert cloud_run.run_count == 1
    run = cloud_run.runs[0]
    assert body["executions"] == [run.execution]
    assert run.task_count == 2
    batch = BuildBatch.from_env(run.env[BATCH_VARIABLE])
    started = {entry["build"] for entry in body["images"] if entry["status"] == "started"}
    assert {r.build_id for r in batch.requests} == started
    tasks = sorted(run.tasks, key=lambda t: t.index)
    assert [t.env["CLOUD_RUN_TASK_INDEX"] for t in tasks] == ["0", "1"]
    assert all(t.env["CLOUD_RUN_TASK_COUNT"] == "2" for t in tasks)
    assert cloud_run.wait_for_tasks() == [0, 0]
    # Each task built exactly its own share, and together they built all.
    shares = [batch.share(task.index, 2) for task in tasks]
    assert [len(share) for share in shares] == [3, 2]
    for task, share in zip(tasks, shares, strict=True):
        log = task.log_path.read_text()
        ids = " ".join(r.build_id for r in share)
        assert f"task {task.index} of 2: {len(share)} of 5 builds: {ids}" in log, log[-2000:]
    # The images are there: the same list again starts nothing.
    again = post(handler, token, {"images": IMAGES})
    assert again.status_code == 202
    assert {e["status"] for e in json.loads(again.get_data())["images"]} == {"cached"}
    assert cloud_run.run_count == 1
    settings = Settings.from_env(environment(tmp_path, "http://127.0.0.1:9/"))
    builds = wiring.metadata_store(settings).recent_builds(20)
    assert sorted(b.state.value for b in builds) == ["succeeded"] * 5


@pytest.mark.parametrize(
    ("enabled", "loaded"), [(False, "[]"), (True, "['registry.trigger']")], ids=["off", "on"]
)
def test_starting_the_function_loads_no_token_verification(
    tmp_path: Path, enabled: bool, loaded: str
) -> None:
    """google-auth's token code loads on the first trigger request, not for pulls."""
    code = (
        "import sys; from registry.app import manifest_handler; "
        "from registry.settings import Settings; "
        "manifest_handler(Settings.from_env()); "
        "print(sorted(m for m in sys.modules if m == 'registry.trigger' or "
        "m.startswith(('google.oauth2', 'google.auth.jwt'))))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NIXERY_")},
        **environment(tmp_path, "http://127.0.0.1:9/certs"),
    }
    if not enabled:
        env.update(NIXERY_TRIGGER_AUDIENCE="", NIXERY_TRIGGER_ALLOWED_SA="")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == loaded
