"""Basic authentication in front of both functions, in this process.

Both functions are loaded by functions-framework with ``NIXERY_AUTH=basic``
(:func:`tests.fuzz.harness.load_functions`): every path of either function
challenges an anonymous client the way Docker expects, checks credentials
against the htpasswd file, and never writes a credential to the logs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from registry import auth
from registry.settings import ConfigError, Settings
from tests.conftest import PKGS
from tests.fuzz.harness import Functions, check_answer, load_functions, unhandled
from tests.fuzz.seed import LAYER, seed_image

PASSWORD = "correct horse battery staple"
SHA_USER = ("bob", "$5$ab$0epTiMJnKKkGc3iWs8daBISjSu.AUoAqYYZpexN/ivD")  # password "x y"
PATHS = [
    "/v2/",
    "/v2/hello/manifests/latest",
    "/v2/hello/tags/list",
    f"/v2/hello/blobs/{LAYER.digest}",
    "/v2/hello/blobs/uploads/",
    "/v2/Not_A_Name/manifests/latest",
    "/",
    "/builds",
    "/nothing/here",
]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "users.htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"# registry users\nalice:{hashed}\n{SHA_USER[0]}:{SHA_USER[1]}\n")
    return path


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory, htpasswd: Path) -> Iterator[Functions]:
    root = tmp_path_factory.mktemp("private")
    env = {
        "NIXERY_PKGS_PATH": str(PKGS),
        "STORAGE_PATH": str(root / "storage"),
        "NIXERY_WORK_DIR": str(root / "work"),
        "NIXERY_AUTH": "basic",
        "NIXERY_AUTH_HTPASSWD": str(htpasswd),
        "NIXERY_AUTH_REALM": "private nixery",
    }
    with load_functions(env) as loaded:
        seed_image(loaded.settings)
        yield loaded
        assert unhandled(loaded.log) == []


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", PATHS)
def test_anonymous_requests_are_challenged(private: Functions, method: str, path: str) -> None:
    response = private.request(method, path)
    check_answer(method, path, response)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="private nixery"'
    if method == "GET":
        [entry] = json.loads(response.get_data())["errors"]
        assert entry["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "headers",
    [
        basic("alice", "wrong"),
        basic("alice", PASSWORD + " "),
        basic("mallory", PASSWORD),
        basic("", ""),
        basic("bob", "x y z"),
        {"Authorization": "Basic"},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
        {"Authorization": "Bearer abc.def.ghi"},
        {"Authorization": "Digest username=alice"},
    ],
)
def test_wrong_credentials_are_refused(private: Functions, headers: dict[str, str]) -> None:
    response = private.request("GET", "/v2/hello/manifests/latest", headers)
    check_answer("GET", "/", response)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(("user", "password"), [("alice", PASSWORD), ("bob", "x y")])
def test_valid_credentials_pull(private: Functions, user: str, password: str) -> None:
    headers = basic(user, password)
    assert private.request("GET", "/v2/", headers).status_code == 200
    manifest = private.request("GET", "/v2/hello/manifests/latest", headers)
    assert manifest.status_code == 200, manifest.get_data()
    blob = private.request("GET", f"/v2/hello/blobs/{LAYER.digest}", headers)
    assert blob.status_code == 200
    assert private.request("GET", "/builds", headers).status_code == 200


def test_the_prebuild_trigger_keeps_its_own_authentication(private: Functions) -> None:
    response = private.request("POST", "/_nixery/prebuild", {"Authorization": "Bearer x"})
    assert response.status_code != 401  # not challenged for basic credentials
    assert "WWW-Authenticate" not in response.headers


def test_credentials_are_never_logged(private: Functions, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-never-log-me"
    for headers in (basic("alice", secret), basic("alice", PASSWORD), basic(secret, secret)):
        private.request("GET", "/v2/hello/manifests/latest", headers)
    logged = caplog.text + "".join(r.getMessage() for r in private.log)
    for value in (secret, PASSWORD, basic("alice", secret)["Authorization"].split()[1]):
        assert value not in logged
    assert "refused credentials" in caplog.text


def test_users_added_to_the_file_are_seen(
    private: Functions, htpasswd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "RELOAD_CHECK_S", 0.0)
    headers = basic("carol", "carol's password")
    assert private.request("GET", "/v2/", headers).status_code == 401
    hashed = bcrypt.hashpw(b"carol's password", bcrypt.gensalt(rounds=4)).decode()
    original = htpasswd.read_text()
    htpasswd.write_text(original + f"carol:{hashed}\n")
    stat = htpasswd.stat()
    os.utime(htpasswd, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new mtime, surely
    try:
        assert private.request("GET", "/v2/", headers).status_code == 200
    finally:
        htpasswd.write_text(original)
        os.utime(htpasswd, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2 * 10**9))
    assert private.request("GET", "/v2/", headers).status_code == 401  # removed again


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"NIXERY_AUTH": "token"}, "NIXERY_AUTH='token' must be one of none, basic"),
        ({"NIXERY_AUTH": "basic"}, "NIXERY_AUTH=basic needs NIXERY_AUTH_HTPASSWD"),
        (
            {"NIXERY_AUTH": "basic", "NIXERY_AUTH_HTPASSWD": "/nonexistent/users"},
            "NIXERY_AUTH_HTPASSWD: cannot read /nonexistent/users",
        ),
        (
            {"NIXERY_AUTH": "none", "NIXERY_AUTH_REALM": 'a"b'},
            "NIXERY_AUTH_REALM may not hold quotes",
        ),
    ],
)
def test_settings_problems(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS), **env})
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


def test_weak_hashes_stop_the_start(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=\n")
    with pytest.raises(ConfigError) as error:
        Settings.from_env(
            {
                "NIXERY_PKGS_PATH": str(PKGS),
                "NIXERY_AUTH": "basic",
                "NIXERY_AUTH_HTPASSWD": str(path),
            }
        )
    assert "use bcrypt (htpasswd -B)" in str(error.value)
    assert "qUqP5" not in str(error.value)


def test_off_by_default() -> None:
    settings = Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS)})
    assert settings.auth.mode == "none"
    assert auth.authenticator(settings.auth) is None


def test_fuzzed_requests_without_credentials_are_all_challenged(private: Functions) -> None:
    """Whatever else is wrong with a request, without credentials it is a 401
    (the gate runs first: an anonymous client learns nothing about names)."""
    from tests.fuzz import mutator
    from tests.fuzz.seed import KNOWN

    for request in mutator.generate(1234, 500, KNOWN):
        response = private.request(request.method, request.path, request.headers)
        check_answer(request.method, request.path, response)
        if response.status_code != 308:  # werkzeug's slash merging comes first
            assert response.status_code == 401, request
