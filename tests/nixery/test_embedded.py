"""The embedded server's dispatcher (`nixery.embedded.create_app`): its short
way to the functions answers exactly what the functions-framework apps answer."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from werkzeug.test import Client, EnvironBuilder

from nixery.embedded import FUNCTIONS_DIR, WSGIApp, create_app

PKGS = Path(__file__).resolve().parents[1] / "pkgs"
DIGEST = "sha256:" + "ab" * 32

REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/v2/", {}),
    ("HEAD", "/v2/", {}),
    ("GET", "/v2", {}),
    ("POST", "/v2/", {}),
    ("GET", f"/v2/hello/manifests/{DIGEST}", {"Accept": "*/*"}),
    ("HEAD", f"/v2/hello/manifests/{DIGEST}", {}),
    ("GET", "/v2/hello/manifests/sha256:nothex", {}),
    ("PUT", "/v2/hello/manifests/latest", {}),
    ("DELETE", f"/v2/hello/manifests/{DIGEST}", {}),
    ("GET", "/v2/Bad_Name/manifests/latest", {}),
    ("GET", f"/v2/hello/blobs/{DIGEST}", {}),
    ("HEAD", f"/v2/a/b/c/blobs/{DIGEST}", {}),
    ("GET", "/v2/hello/blobs/md5:abc", {}),
    ("POST", "/v2/hello/blobs/uploads/", {}),
    ("PATCH", "/v2/hello/blobs/uploads/1234", {}),
    ("GET", "/v2/hello/tags/list?n=1", {}),
    ("GET", "/v2/hello/tags/list?last=zzz", {}),
    ("GET", "/v3/", {}),
    ("GET", "/robots.txt", {}),
    ("GET", "/", {}),
]


@pytest.fixture
def apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in list(os.environ):
        if name.startswith(("NIXERY_", "STORAGE_", "GCS_", "S3_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NIXERY_PKGS_PATH", str(PKGS))
    monkeypatch.setenv("STORAGE_PATH", str(tmp_path / "storage"))
    monkeypatch.setenv("NIXERY_WORK_DIR", str(tmp_path / "work"))
    saved_main = sys.modules.get("main")
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level  # main.py configures logging
    create = functions_framework.create_app
    try:
        yield {
            "dispatch": create_app(),
            "manifest": create("manifest", str(FUNCTIONS_DIR / "manifest" / "main.py")),  # type: ignore[no-untyped-call]
            "blob": create("blob", str(FUNCTIONS_DIR / "blob" / "main.py")),  # type: ignore[no-untyped-call]
        }
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        if saved_main is None:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main


def answer(app: WSGIApp, method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    response = Client(app).open(path, method=method, headers=headers)
    kept = sorted((k, v) for k, v in response.headers.items() if k != "Date")
    return response.status_code, kept, response.get_data()


@pytest.mark.parametrize(("method", "path", "headers"), REQUESTS)
def test_dispatch_answers_as_the_functions_do(
    apps: dict[str, Any], method: str, path: str, headers: dict[str, str]
) -> None:
    function = apps["blob"] if "/blobs/" in path and "/uploads" not in path else apps["manifest"]
    ours = answer(apps["dispatch"], method, path, headers)
    assert ours == answer(function, method, path, headers)
    if path.startswith("/v2"):
        assert ("Docker-Distribution-API-Version", "registry/2.0") in ours[1]


def test_a_request_that_cannot_be_read_gets_the_spec_500(apps: dict[str, Any]) -> None:
    environ = EnvironBuilder(path="/v2/").get_environ()
    environ["QUERY_STRING"] = "\u4e28"  # not latin-1: werkzeug's request refuses it
    statuses: list[str] = []
    body = b"".join(
        apps["dispatch"](environ, lambda status, headers, exc=None: statuses.append(status))
    )
    assert statuses == ["500 INTERNAL SERVER ERROR"]
    assert b'"code":"UNKNOWN"' in body.replace(b" ", b"")
