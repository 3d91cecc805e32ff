"""An HTTP proxy that fails some requests on purpose: transient faults for
the Cloud Storage emulator.

It forwards each request to one upstream (fake-gcs-server) and relays the
answer, except every ``every``-th request matching ``match``, which gets one
of these faults, in turn:

``503``
    answered ``503 Service Unavailable`` (a JSON error body, as Cloud Storage
    sends) without reaching the upstream;
``reset-before``
    the connection is reset (TCP RST) before anything is forwarded;
``reset-after``
    the request is forwarded and carried out, then the connection is reset
    instead of answering: the client cannot tell whether it happened, which
    is what makes a retry dangerous unless the write is idempotent.

The client libraries see exactly what a flaky network or an overloaded
front end shows them, so what is tested is their retry helpers and the
adapters' use of them. Every request is recorded (:attr:`FaultProxy.log`)
with its outcome. ``Host`` is rewritten to the upstream's and ``Location``
headers pointing at the upstream are rewritten to the proxy, so resumable
upload sessions come back through it too; so do the ``mediaLink`` URLs in
JSON answers, which downloads use. It runs in the test process on
127.0.0.1; :meth:`FaultProxy.stop` shuts it down.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("503", "reset-before", "reset-after")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}
)

Match = Callable[[str, str], bool]  # (method, path) -> may this request be failed?


@dataclass(frozen=True)
class Passed:
    method: str
    path: str
    outcome: str  # "ok" or one of FAULTS
    status: int = 0  # the upstream's status, when it answered


@dataclass
class FaultProxy:
    upstream: str  # host:port
    every: int
    faults: tuple[str, ...]
    match: Match
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    log: list[Passed] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _kinds: itertools.cycle[str] | None = None
    enabled: bool = True

    @property
    def host(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def injected(self) -> list[Passed]:
        with self.lock:
            return [p for p in self.log if p.outcome != "ok"]

    def decide(self, method: str, path: str) -> str:
        """The fault for this request ("ok" for none); counts matching requests."""
        if not self.enabled or not self.match(method, path):
            return "ok"
        with self.lock:
            if next(self._counter) % self.every:
                return "ok"
            if self._kinds is None:
                self._kinds = itertools.cycle(self.faults)
            return next(self._kinds)

    def record(self, passed: Passed) -> None:
        with self.lock:
            self.log.append(passed)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # clients drop pooled connections after a reset: nothing to report


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0, then close)."""
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    sock.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else None


def start_fault_proxy(
    upstream: str,
    *,
    every: int = 3,
    faults: tuple[str, ...] = FAULTS,
    match: Match = lambda method, path: True,
) -> FaultProxy:
    """Proxy to ``upstream`` (host:port), failing every ``every``-th matching request."""
    unknown = set(faults) - set(FAULTS)
    if unknown or every < 1:
        raise ValueError(f"bad fault plan: every={every}, unknown faults {sorted(unknown)}")
    proxy = FaultProxy(upstream=upstream, every=every, faults=faults, match=match)
    upstream_url = f"http://{upstream}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self) -> None:
            body = _read_body(self)
            fault = proxy.decide(self.command, self.path)
            if fault == "reset-before":
                proxy.record(Passed(self.command, self.path, fault))
                _reset(self)
                return
            if fault == "503":
                proxy.record(Passed(self.command, self.path, fault))
                error = json.dumps({"error": {"code": 503, "message": "injected"}}).encode()
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)
                return
            host, port = upstream.split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=300)
            try:
                connection.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                connection.putheader("Host", upstream)
                for key, value in self.headers.items():
                    if key.lower() not in _HOP_BY_HOP | {"host", "content-length"}:
                        connection.putheader(key, value)
                if body is not None:
                    connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body)
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
            proxy.record(Passed(self.command, self.path, fault, response.status))
            if "json" in (response.getheader("Content-Type") or ""):
                # mediaLink and selfLink name the upstream: downloads come here too.
                data = data.replace(upstream_url.encode(), proxy.url.encode())
            if fault == "reset-after":
                _reset(self)
                return
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                lowered = key.lower()
                if lowered in _HOP_BY_HOP or lowered == "content-length":
                    continue
                if lowered == "location":
                    self.send_header(key, value.replace(upstream_url, proxy.url))
                else:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _forward  # noqa: N815

    server = _QuietServer(("127.0.0.1", 0), Handler)
    proxy.server = server
    proxy.thread = threading.Thread(target=server.serve_forever, daemon=True, name="fault-proxy")
    proxy.thread.start()
    return proxy
