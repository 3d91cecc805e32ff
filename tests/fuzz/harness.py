"""Both functions in this process, as functions-framework loads them, and the
checks every answer must pass.

:func:`load_functions` runs ``create_app`` on ``functions/manifest/main.py``
and ``functions/blob/main.py`` with a given environment (each reads its
settings at import, exactly as on Cloud Functions), then puts the process
back as it was: environment, ``sys.modules["main"]`` (functions-framework
registers every function file under that one name) and the root logger's
handlers. Requests are dispatched by path the way the load balancer's URL
map does (``/v2/<name>/blobs/...`` to the blob function, the rest to the
manifest function).

The launcher is replaced by :class:`RecordingLauncher`: no builder runs.
It records the Nix command line the builder would run first for the build
(checked by :func:`tests.fuzz.nixshape.check_argv`) and fails the build at
once as "not found", as a real builder does for a name the package set does
not have. So a fuzzed name costs a claim and a record, not a Nix process.

:func:`check_answer` is the contract of every answer to any request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote_to_bytes

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import TestResponse

import functions
from launcher.port import BuildRequest, LaunchError
from metastore.records import BuildError
from metastore.sqlite import SqliteMetadataStore
from nixspec.invocation import eval_argv, resolve_request
from ocimodel.errors import ErrorCode
from registry import wiring
from registry.routes import Kind, parse
from registry.settings import Settings
from tests.fuzz.nixshape import check_argv

FUNCTIONS_DIR = Path(functions.__file__).parent
API_VERSION = "registry/2.0"
SUCCESS = (200, 202, 206, 304, 307)
#: Requests sent, by suite ("in-process", "http"); printed at the end of the run.
COUNTS: Counter[str] = Counter()
ENV_PREFIXES = ("NIXERY_", "GOOGLE_", "GCS_", "STORAGE_", "NIX_TIMEOUT", "NIX_POPULARITY")


@dataclass
class RecordingLauncher:
    """Records what would reach Nix; fails every build as not found."""

    metadata: SqliteMetadataStore
    allow_unfree: bool = False
    nix_calls: list[list[str]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    fail_launch: bool = False

    def launch(self, request: BuildRequest) -> str:
        if self.fail_launch:
            raise LaunchError("no builder in this test")
        spec = request.spec
        argv = eval_argv(resolve_request(spec, spec.packages, allow_unfree=self.allow_unfree))
        self.names.extend(check_argv(argv))
        self.nix_calls.append(argv)
        self.metadata.fail_build(
            request.build_id,
            BuildError(ErrorCode.MANIFEST_UNKNOWN.name, "packages not found (recording launcher)"),
            now=time.time(),
            timings={},
            log_tail="",
        )
        return f"recorded/{request.build_id}"


@dataclass
class Functions:
    """The two loaded functions and what they did."""

    manifest: Any  # flask test clients
    blob: Any
    launcher: RecordingLauncher
    settings: Settings
    log: list[logging.LogRecord]
    requests: int = 0

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> TestResponse:
        route = parse(path.split("?", 1)[0])
        client = self.blob if route.kind is Kind.BLOB else self.manifest
        self.requests += 1
        COUNTS["in-process"] += 1
        # A client percent-encodes these; URL parsing (the test client's
        # urlsplit) would drop them and could turn "/\t/x" into "//x".
        path = path.replace("\t", "%09").replace("\n", "%0A").replace("\r", "%0D")
        overrides = {}
        if path.startswith("//"):
            # The test client would read "//host/..." as a URL with a host;
            # over HTTP it is a path. Put it in the WSGI environ as a server does.
            raw, _, query = path.partition("?")
            overrides = {"PATH_INFO": unquote_to_bytes(raw).decode("latin-1")}
            overrides["QUERY_STRING"] = quote(query, safe="/%?=&:;@!$'()*+,~")
            path = "/"
        response: TestResponse = client.open(
            path,
            method=method,
            headers=headers or {},
            data=body,
            buffered=True,
            environ_overrides=overrides,
        )
        return response


class _Collector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        # Only what :func:`unhandled` looks for: the list is checked after
        # every request, so keeping every INFO line made a long run quadratic.
        if record.levelno >= logging.ERROR or "unhandled" in record.getMessage():
            self.records.append(record)


@contextmanager
def load_functions(env: Mapping[str, str], *, allow_unfree: bool = False) -> Iterator[Functions]:
    """Both functions loaded with ``env`` (plus a recording launcher)."""
    import functions_framework

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_main = sys.modules.get("main")
    records: list[logging.LogRecord] = []
    collector = _Collector(records)
    settings = Settings.from_env(env)
    launcher = RecordingLauncher(SqliteMetadataStore(settings.metadata_path), allow_unfree)
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(ENV_PREFIXES):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("FUNCTION_TARGET", "")
        patch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
        patch.setattr(wiring, "launcher", lambda _settings: launcher)
        create = functions_framework.create_app
        manifest = create("manifest", str(FUNCTIONS_DIR / "manifest" / "main.py"))  # type: ignore[no-untyped-call]
        blob = create("blob", str(FUNCTIONS_DIR / "blob" / "main.py"))  # type: ignore[no-untyped-call]
    # configure_logging() replaced the root handlers: collect, and restore later.
    root.handlers = [*saved_handlers, collector]
    try:
        yield Functions(manifest.test_client(), blob.test_client(), launcher, settings, records)
    finally:
        # Only what was added here: pytest removes its own capture handlers
        # at the end of each phase, and a stale copy of the list would keep them.
        root.removeHandler(collector)
        root.setLevel(saved_level)
        if saved_main is None:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main


class Answer(Protocol):
    """What :func:`check_answer` reads: a werkzeug test response, or
    :class:`tests.fuzz.test_http_fuzz.HttpAnswer` over real HTTP."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Headers: ...

    def get_data(self) -> bytes: ...


def check_answer(method: str, path: str, response: Answer) -> None:
    """The contract of every answer: a success, or a spec error in JSON with
    its code's status; never a 5xx for anything a client sent."""
    status = response.status_code
    context = f"{method} {path[:300]!r} -> {status} {response.get_data()[:500]!r}"
    assert status < 500, context
    if status == 308:
        # werkzeug's routing merges repeated slashes in the path ("//" -> "/")
        # with a redirect, before any function code runs: a normalisation.
        assert "//" in path.split("?", 1)[0], context
        return
    assert response.headers.get("Docker-Distribution-API-Version") == API_VERSION, context
    if method == "HEAD":
        assert response.get_data() == b"", context
    if status < 400:
        assert status in SUCCESS, context
        digest = response.headers.get("Docker-Content-Digest")
        if status == 200 and method == "GET" and digest:  # the bytes are what they claim
            assert digest == "sha256:" + hashlib.sha256(response.get_data()).hexdigest(), context
            assert response.headers.get("Content-Length") == str(len(response.get_data()))
        return
    assert response.headers.get("Content-Type") == "application/json", context
    if method == "HEAD":
        return  # the envelope is in the headers' length only
    body = json.loads(response.get_data())
    assert set(body) == {"errors"} and body["errors"], context
    entry = body["errors"][0]
    assert {"code", "message"} <= set(entry), context
    code = ErrorCode[entry["code"]]
    assert status == code.status or (status == 416 and code is ErrorCode.SIZE_INVALID), context
    assert int(response.headers["Content-Length"]) == len(response.get_data()), context
    if status == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith(("Basic ", "Bearer ")), (
            context
        )
    if status == 405:
        assert response.headers.get("Allow"), context
    if status == 429:
        assert response.headers.get("Retry-After", "").isdigit(), context


def unhandled(records: list[logging.LogRecord]) -> list[str]:
    """Log lines that betray an exception escaping a handler."""
    return [
        record.getMessage()
        for record in records
        if record.levelno >= logging.ERROR or "unhandled" in record.getMessage()
    ]
