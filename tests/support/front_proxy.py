"""A local stand-in for the load balancer's URL map: one registry host in
front of the two functions.

In the cloud, one HTTPS hostname sends ``/v2/<name>/blobs/<digest>`` to the
blob function and everything else to the manifest function (with several
instances behind each). This real HTTP server does the same on 127.0.0.1:
it forwards each request unchanged (method, path with query, headers, body)
to the backend the path selects, round-robin over that backend's processes,
and relays the answer unchanged (status, headers, streamed body; redirects are
passed to the client, never followed). It exists only because the load
balancer has no local stand-in; the functions behind it are the real ones.
"""

from __future__ import annotations

import http.client
import itertools
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BLOB_PATH = re.compile(r"/v2/.+/blobs/[^/]*")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
    }
)


@dataclass
class FrontProxy:
    server: ThreadingHTTPServer
    thread: threading.Thread
    routed: dict[str, int] = field(default_factory=lambda: {"manifest": 0, "blob": 0})

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = response.read(64 * 1024)
        if not chunk:
            return
        yield chunk


def start_front_proxy(manifest: Sequence[str], blob: Sequence[str]) -> FrontProxy:
    """Route to ``manifest`` / ``blob`` backends (``host:port`` each)."""
    cycles = {"manifest": itertools.cycle(manifest), "blob": itertools.cycle(blob)}
    lock = threading.Lock()
    state: dict[str, FrontProxy] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without TCP_NODELAY the body
        # waits for the client's delayed ACK (~40 ms per answer with a body).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self) -> None:
            path = self.path.split("?", 1)[0]
            backend = "blob" if _BLOB_PATH.fullmatch(path) else "manifest"
            with lock:
                target = next(cycles[backend])
                state["proxy"].routed[backend] += 1
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            host, port = target.split(":")
            upstream = http.client.HTTPConnection(host, int(port), timeout=900)
            try:
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for key, value in self.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        upstream.putheader(key, value)
                upstream.endheaders(body)
                response = upstream.getresponse()
                self.send_response_only(response.status, response.reason)
                passed = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                for key, value in passed:
                    self.send_header(key, value)
                has_length = any(k.lower() == "content-length" for k, _ in passed)
                if self.command == "HEAD" or response.status in (204, 304):
                    self.end_headers()
                    return
                if not has_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                for chunk in _chunks(response):
                    self.wfile.write(chunk)
            finally:
                upstream.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _forward  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="front-proxy")
    proxy = FrontProxy(server, thread)
    state["proxy"] = proxy
    thread.start()
    return proxy
