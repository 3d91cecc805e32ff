"""Every limit end to end: ``nixery serve`` with the limit set, real Nix
building the test package set, answers checked as a client sees them.

Each test starts its own registry with the settings it needs; the Nix shims
of :func:`tests.support.nixery_server.start_nixery` tell what reached Nix.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import PKGS
from tests.support.nixery_server import NixeryServer, start_nixery
from tests.support.procs import pids_referencing

pytestmark = [pytest.mark.nix, pytest.mark.integration]

POLL_LIMIT_S = 180.0  # a bound for waiting on builds, never an assertion


@contextmanager
def server(root: Path, env: Mapping[str, str], *, workers: int = 2) -> Iterator[NixeryServer]:
    running = start_nixery(root, {"NIXERY_PKGS_PATH": str(PKGS), **env}, workers=workers)
    try:
        yield running
    finally:
        running.stop()


def error(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/json", response.text
    [entry] = response.json()["errors"]
    assert isinstance(entry, dict)
    return entry


def sleep_value() -> str:
    """Seconds for ``sleeper``: a new derivation each run, so Nix really sleeps."""
    return f"{4 + secrets.randbelow(3)}.{secrets.randbelow(10**6):06d}"


def pull_until_done(registry: NixeryServer, name: str) -> requests.Response:
    """Pull until the answer is no longer "still building"."""
    give_up = time.monotonic() + POLL_LIMIT_S
    while True:
        response = registry.get(f"/v2/{name}/manifests/latest")
        if response.status_code != 429 or time.monotonic() > give_up:
            return response
        time.sleep(0.5)


def test_denied_packages_never_reach_nix(tmp_path: Path) -> None:
    with server(tmp_path, {"NIXERY_DENY_PACKAGES": "hello, *bitcoin*, _7zz"}) as registry:
        response = registry.get("/v2/shell/hello/manifests/latest")
        assert response.status_code == 403
        entry = error(response)
        assert entry["code"] == "DENIED"
        assert "hello (NIXERY_DENY_PACKAGES)" in entry["message"]
        assert registry.nix_calls() == []  # refused before any Nix call

        # "7zz" passes the name check; it resolves to the attribute "_7zz",
        # which the builder refuses before realising anything.
        response = registry.get("/v2/7zz/manifests/latest")
        assert response.status_code == 403
        entry = error(response)
        assert entry["code"] == "DENIED"
        assert "_7zz (NIXERY_DENY_PACKAGES)" in entry["message"]
        assert registry.builds() == []
        assert registry.get("/v2/foo/manifests/latest").status_code == 200


def test_allow_list(tmp_path: Path) -> None:
    with server(tmp_path, {"NIXERY_ALLOW_PACKAGES": "hello,foo*,libfoo"}) as registry:
        response = registry.get("/v2/shell/hello/manifests/latest")
        assert response.status_code == 403
        message = error(response)["message"]
        for package in ("bashInteractive", "coreutils", "moreutils", "nano"):
            assert f"{package} (NIXERY_ALLOW_PACKAGES)" in message
        assert "hello" not in message.replace("shell/hello", "")
        assert registry.get("/v2/hello/manifests/latest").status_code == 200
        assert registry.get("/v2/foobar/manifests/latest").status_code == 200


def test_closure_limit_stops_before_packing(tmp_path: Path) -> None:
    with server(tmp_path, {"NIXERY_MAX_CLOSURE_MB": "1"}) as registry:
        response = registry.get("/v2/hello/manifests/latest")
        assert response.status_code == 403
        entry = error(response)
        assert entry["code"] == "DENIED"
        assert "the limit is 1 MB (NIXERY_MAX_CLOSURE_MB)" in entry["message"]
        assert entry["detail"]["closure_bytes"] > 2**20
        blobs = registry.root / "storage" / "blobs" / "sha256"
        assert not blobs.exists() or list(blobs.iterdir()) == []  # nothing packed
        assert registry.get("/v2/hello/manifests/latest").status_code == 403  # remembered


def test_build_timeout_stops_the_build(tmp_path: Path) -> None:
    seconds = f"30.{secrets.randbelow(10**6):06d}"
    env = {
        "NIXERY_BUILD_TIMEOUT_S": "2",
        "NIX_TIMEOUT": "120",
        "NIXERY_TEST_SLEEP_S": seconds,
    }
    with server(tmp_path, env) as registry:
        response = registry.get("/v2/sleeper/manifests/latest")
        assert response.status_code == 503
        entry = error(response)
        assert entry["code"] == "UNAVAILABLE"
        assert "NIXERY_BUILD_TIMEOUT_S of 2s" in entry["message"]
        # The build's Nix tree was killed: nothing sleeps on.
        assert pids_referencing(Path(seconds)) == []


def test_unfree_is_off_by_default(tmp_path: Path) -> None:
    with server(tmp_path / "default", {}) as registry:
        response = registry.get("/v2/unfree/manifests/latest")
        assert response.status_code == 404
        entry = error(response)
        assert entry["code"] == "MANIFEST_UNKNOWN"
        assert "unfree license" in entry["message"]
    with server(tmp_path / "allowed", {"NIXERY_ALLOW_UNFREE": "true"}) as registry:
        response = registry.get("/v2/unfree/manifests/latest")
        assert response.status_code == 200, response.text
        layers = response.json()["layers"]
        assert layers


@pytest.mark.parametrize("setting", ["NIXERY_MAX_BUILDS", "NIXERY_MAX_BUILDS_PER_INSTANCE"])
def test_build_concurrency_limit(tmp_path: Path, setting: str) -> None:
    env = {setting: "1", "NIXERY_BUILD_WAIT_S": "1", "NIXERY_TEST_SLEEP_S": sleep_value()}
    with server(tmp_path, env, workers=1) as registry:
        first = registry.get("/v2/sleeper/manifests/latest")
        assert first.status_code == 429  # still building: the build goes on
        assert "limit" not in error(first)["detail"]

        refused = registry.get("/v2/hello/manifests/latest")
        assert refused.status_code == 429
        entry = error(refused)
        assert entry["code"] == "TOOMANYREQUESTS"
        assert entry["detail"]["limit"] == setting
        assert f"the limit is 1 ({setting})" in entry["message"]
        assert refused.headers["Retry-After"].isdigit()

        follower = registry.get("/v2/sleeper/manifests/latest")
        assert follower.status_code == 429 and "limit" not in error(follower)["detail"]

        assert pull_until_done(registry, "sleeper").status_code == 200
        started = registry.get("/v2/hello/manifests/latest")  # the place is free now
        assert started.status_code == 200 or "limit" not in error(started)["detail"]
        assert pull_until_done(registry, "hello").status_code == 200
        assert len(registry.builds()) == 2
