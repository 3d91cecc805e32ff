"""A tiny real HTTP server of fixed answers, for clients under test.

Serves ``routes`` (path -> :class:`Answer`) on 127.0.0.1 from a thread:
the OIDC signing certificates of the trigger tests, the channel and binary
cache of the popcount tests. Records every request path (``requests``) so a
test can count downloads, and can fail a path on purpose (``fail_next``:
the next N requests for it get the given status) to exercise retries.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    body: bytes = b""
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class StaticServer:
    routes: dict[str, Answer] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    failure_status: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, path: str, count: int = 1, status: int = 500) -> None:
        with self.lock:
            self.failures[path] += count
            self.failure_status[path] = status

    def count(self, prefix: str = "", suffix: str = "") -> int:
        with self.lock:
            return sum(1 for p in self.requests if p.startswith(prefix) and p.endswith(suffix))

    def answer(self, path: str) -> Answer:
        with self.lock:
            self.requests.append(path)
            if self.failures[path] > 0:
                self.failures[path] -= 1
                return Answer(b"injected failure", self.failure_status[path])
            return self.routes.get(path, Answer(b"not found", 404))

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_static_server(routes: dict[str, Answer] | None = None) -> StaticServer:
    state = StaticServer(routes=dict(routes or {}))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients under test expect

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tests assert on the recorded requests

        def do_GET(self) -> None:
            answer = state.answer(self.path.partition("?")[0])
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.server = server
    state.thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    state.thread.start()
    return state
