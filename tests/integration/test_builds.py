"""Builds through the registry: failures answered clearly, Nix only when needed.

Each test starts its own registry (fresh storage and metadata) so the counts
of Nix invocations are its own.
"""

from __future__ import annotations

import concurrent.futures
import time

import pytest
import requests

from tests.integration.test_registry_http import error_code, errors
from tests.support.nixery_server import NixeryServer

pytestmark = [pytest.mark.nix, pytest.mark.integration]


def manifest(registry: NixeryServer, name: str) -> requests.Response:
    return registry.get(f"/v2/{name}/manifests/latest")


def test_warm_pull_runs_no_nix(registry: NixeryServer) -> None:
    cold = manifest(registry, "shell/hello")
    assert cold.status_code == 200, cold.text
    calls = len(registry.nix_calls())
    assert calls >= 3  # evaluate, realise, path-info
    for name in ("shell/hello", "hello/shell"):
        assert manifest(registry, name).status_code == 200
        assert registry.head(f"/v2/{name}/manifests/latest").status_code == 200
    digest = cold.headers["Docker-Content-Digest"]
    assert registry.get(f"/v2/shell/hello/manifests/{digest}").status_code == 200
    assert len(registry.nix_calls()) == calls


def test_twenty_concurrent_cold_pulls_build_once(registry: NixeryServer) -> None:
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: manifest(registry, "shell/foo"), range(20)))
    assert [a.status_code for a in answers] == [200] * 20, [
        a.text for a in answers if a.status_code != 200
    ]
    assert len({a.content for a in answers}) == 1
    assert len(registry.builds()) == 1, registry.nix_calls()
    evaluations = [c for c in registry.nix_calls() if c.startswith("nix-instantiate")]
    assert len(evaluations) == 1, registry.nix_calls()


def test_unknown_packages_are_all_named(registry: NixeryServer) -> None:
    response = manifest(registry, "shell/nosuchthing/hello/alsomissing")
    assert response.status_code == 404
    error = errors(response)[0]
    assert error["code"] == "MANIFEST_UNKNOWN"
    assert "nosuchthing" in error["message"] and "alsomissing" in error["message"]
    assert "hello" not in error["message"].replace("nosuchthing", "")
    problems = {p["name"]: p["problem"] for p in error["detail"]["packages"]}
    assert problems == {"alsomissing": "not-found", "nosuchthing": "not-found"}
    assert error["detail"]["build"]


@pytest.mark.parametrize(
    ("name", "problem", "text"),
    [
        ("broken", "build-failed", "broken"),
        ("throws", "eval-error", ""),
        ("assertfails", "eval-error", "assertion"),
        ("unfree", "eval-error", "unfree"),
        ("notapackage", "not-a-package", "not a package"),
        ("notapackageset", "not-a-package", "not a package"),
    ],
)
def test_package_problems_are_explained(
    registry: NixeryServer, name: str, problem: str, text: str
) -> None:
    response = manifest(registry, f"hello/{name}")
    assert response.status_code == 404, response.text
    error = errors(response)[0]
    assert error["code"] == "MANIFEST_UNKNOWN"
    packages = error["detail"]["packages"]
    assert [(p["name"], p["problem"]) for p in packages] == [(name, problem)]
    assert text.lower() in (error["message"] + packages[0]["message"]).lower()


def test_uncatchable_evaluation_errors_are_isolated(registry: NixeryServer) -> None:
    """abort and a missing attribute kill a whole evaluation: the guilty
    names are found by bisection and named, the good ones do not matter."""
    response = manifest(registry, "hello/aborts/coreutils/missingdependency/nano")
    assert response.status_code == 404, response.text
    packages = errors(response)[0]["detail"]["packages"]
    assert {p["name"]: p["problem"] for p in packages} == {
        "aborts": "eval-error",
        "missingdependency": "eval-error",
    }
    messages = {p["name"]: p["message"] for p in packages}
    assert "abort" in messages["aborts"]
    assert "notInThisPackageSet" in messages["missingdependency"]


def test_failures_are_remembered(registry: NixeryServer) -> None:
    first = manifest(registry, "hello/broken")
    assert first.status_code == 404
    calls = len(registry.nix_calls())
    again = manifest(registry, "hello/broken")
    assert again.status_code == 404
    assert errors(again)[0]["detail"]["build"] == errors(first)[0]["detail"]["build"]
    assert len(registry.nix_calls()) == calls


def test_bad_names_never_reach_nix(registry: NixeryServer) -> None:
    for path in ("/v2/UPPER/manifests/latest", "/v2/a..b/manifests/latest", "/v2/x/manifests/-t"):
        response = registry.get(path)
        assert response.status_code in (400, 404)
        assert error_code(response) in ("NAME_INVALID", "MANIFEST_UNKNOWN")
    assert registry.nix_calls() == []


def test_case_insensitive_lookup_and_ambiguity(registry: NixeryServer) -> None:
    nested = manifest(registry, "python3packages.requests/haskellpackages.hunit/sdl2")
    assert nested.status_code == 200, nested.text
    assert manifest(registry, "ambiguous").status_code == 200  # exact spelling wins
    ambiguous = manifest(registry, "casetwin")
    assert ambiguous.status_code == 404
    error = errors(ambiguous)[0]
    packages = error["detail"]["packages"]
    assert packages[0]["problem"] == "ambiguous"
    assert sorted(packages[0]["candidates"]) == ["CaseTwin", "caseTwin"]
    assert "CaseTwin" in error["message"] and "caseTwin" in error["message"]


def test_leading_digit_maps_to_underscore(registry: NixeryServer) -> None:
    response = manifest(registry, "7zz")
    assert response.status_code == 200, response.text


def test_cold_and_warm_timings_are_recorded(registry: NixeryServer) -> None:
    start = time.monotonic()
    assert manifest(registry, "shell/hello").status_code == 200
    cold = time.monotonic() - start
    start = time.monotonic()
    assert manifest(registry, "shell/hello").status_code == 200
    warm = time.monotonic() - start
    # Not a timing assertion: the figures are printed for the closing note.
    print(f"\nshell/hello manifest: cold {cold:.3f} s, warm {warm:.4f} s")
