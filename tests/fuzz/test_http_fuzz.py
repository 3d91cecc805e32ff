"""The fuzz over real HTTP: ``nixery serve`` and real Nix, fewer requests.

What the in-process suite cannot show: gunicorn's parsing in front of the
functions, percent-decoding of real request lines, builders started for
every fuzzed name that parses, and the Nix command lines they really run.
Each Nix command (``nix``, ``nix-instantiate``, ``nix-store``) is a shim on
the server's ``PATH`` that appends its full argv as one JSON line, then
execs the real command; every line must pass
:func:`tests.fuzz.nixshape.check_argv` (names only inside the JSON request),
and the names found there must all be attribute paths.

Requests are sent eight at a time through ``http.client`` (paths as raw as
HTTP allows: non-ASCII and controls percent-encoded, as clients send them),
plus raw byte strings a client library would refuse to send. A malformed
request line is gunicorn's to answer (400, or a closed connection); the
server must stay up and answer the next request.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import settings
from werkzeug.datastructures import Headers

from tests.conftest import PKGS
from tests.fuzz import mutator
from tests.fuzz.harness import COUNTS, check_answer
from tests.fuzz.nixshape import check_argv
from tests.fuzz.seed import KNOWN
from tests.fuzz.strategies import REAL_NAMES, FuzzRequest
from tests.support.nixery_server import NIX_COMMANDS, NixeryServer, start_nixery

pytestmark = [pytest.mark.nix, pytest.mark.integration]

PACKAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_+-]*)*")
REQUESTS = settings().max_examples * 6
THREADS = 8
SHIM = """#!{python}
import json, os, sys
line = (json.dumps([{command!r}, *sys.argv[1:]]) + "\\n").encode()
fd = os.open({log!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, line)  # one write per call: lines from parallel calls never interleave
os.close(fd)
os.execv({real!r}, [{real!r}, *sys.argv[1:]])
"""
RAW = (
    b"GET /v2/\x00/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/a b/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G\xc3\x89T /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/hello/manifests/latest HTTP/1.1\r\nHost: x\r\nAccept: " + b"a" * 20000 + b"\r\n\r\n",
    b"GET /v2/hello/manifests/latest HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
    b"GET /v2/\xff\xfe/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /v2/hello/manifests/latest HTTP/9.9\r\n\r\n",
    b"GET\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello's start
)


# What gunicorn refuses before any function runs (RFC 9110/9112, its limits):
# a method that is not 3-20 characters of a token without lowercase, a control
# character in a header value, a request line over 4094 bytes, a header line
# over 8190. It answers those itself: 400, 414 or 431, in HTML.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_METHOD = re.compile(r"[A-Z0-9!$%&'*+.^_`|~-]{3,20}")


def malformed_http(request: FuzzRequest) -> bool:
    line = f"{request.method} {encoded(request.path)} HTTP/1.1"
    return (
        not _METHOD.fullmatch(request.method)
        or len(line) > 4094
        or any(_CONTROL.search(value) for _, value in request.headers)
        or any(len(f"{name}: {value}".encode()) > 8190 for name, value in request.headers)
    )


class HttpAnswer:
    """An ``http.client`` answer shaped like a werkzeug test response."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self.headers = Headers(response.getheaders())
        self._data = response.read()

    def get_data(self) -> bytes:
        return self._data


def make_shims(directory: Path, log: Path) -> None:
    directory.mkdir(parents=True)
    for command in NIX_COMMANDS:
        real = next(
            (
                str(Path(d) / command)
                for d in os.environ["PATH"].split(":")
                if (Path(d) / command).is_file()
            ),
            None,
        )
        if real is None:
            continue
        shim = directory / command
        shim.write_text(
            SHIM.format(python=sys.executable, command=command, log=str(log), real=real)
        )
        shim.chmod(0o755)


def encoded(path: str) -> str:
    """The request target a client sends: percent-encoded where HTTP needs it."""
    return quote(path, safe="/%?=&:;@!$'()*+,~[]")


def send(host: str, port: int, request: FuzzRequest) -> tuple[FuzzRequest, HttpAnswer | str]:
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        connection.putrequest(request.method, encoded(request.path), skip_accept_encoding=True)
        for name, value in request.headers:
            connection.putheader(name, value.encode("utf-8"))
        connection.endheaders(request.body or None)
        return request, HttpAnswer(connection.getresponse())
    except (http.client.HTTPException, OSError) as exc:
        return request, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def send_raw(host: str, port: int, data: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def fuzzed_server(
    nix: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NixeryServer, Path, Path]]:
    root = tmp_path_factory.mktemp("fuzz-http")
    shims, log = root / "argv-shims", root / "nix-argv.jsonl"
    make_shims(shims, log)
    env = {
        "NIXERY_PKGS_PATH": str(PKGS),
        "PATH": f"{shims}:{os.environ['PATH']}",
        "NIX_TIMEOUT": "60",
        "NIXERY_BUILD_WAIT_S": "120",
        "NIXERY_TEST_SLEEP_S": "1",  # should a fuzzed name be "sleeper"
        "NIXERY_TEST_LARGE_MIB": "1",  # or "large"
    }
    server = start_nixery(root, env)
    yield server, log, root / "work"
    server.stop()


def test_fuzz_over_http(fuzzed_server: tuple[NixeryServer, Path, Path]) -> None:
    server, argv_log, work_dir = fuzzed_server
    host, port = server.host.split(":")
    seed = int(os.environ.get("NIXERY_FUZZ_SEED", "0")) or int(time.time())
    pulls = [FuzzRequest("GET", f"/v2/{name}/manifests/latest", [], b"") for name in REAL_NAMES]
    batch = pulls + list(mutator.generate(seed, REQUESTS, KNOWN))
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda r: send(host, int(port), r), batch))
    COUNTS["http"] += len(batch)

    failures, refused = [], 0
    for request, answer in answers:
        if isinstance(answer, str):
            failures.append(f"{request.method} {request.path[:200]!r}: {answer}")
        elif malformed_http(request):
            refused += 1  # gunicorn's to answer: any 4xx will do
            if not 400 <= answer.status_code < 500:
                failures.append(f"{request.method} {request.path[:200]!r}: {answer.status_code}")
        else:
            try:
                check_answer(request.method, request.path, answer)
            except AssertionError as exc:
                failures.append(str(exc))
    assert failures == [], f"seed {seed}:\n" + "\n".join(failures[:20])
    assert any(a.status_code == 200 for _, a in answers if not isinstance(a, str))
    assert refused < len(batch) / 2  # most requests reached the functions

    for data in RAW:
        raw_answer = send_raw(host, int(port), data)
        COUNTS["http"] += 1
        assert raw_answer == b"" or raw_answer.startswith(b"HTTP/1.1 4"), raw_answer[:200]
    assert server.get("/v2/").status_code == 200  # still serving

    log = server.process.log_path.read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log

    calls = [json.loads(line) for line in argv_log.read_text().splitlines()]
    assert any(call[0] == "nix-instantiate" for call in calls)
    names = [name for call in calls for name in check_argv(call, str(work_dir))]
    assert names and all(PACKAGE.fullmatch(name) for name in names), names
