"""An HTTP proxy that breaks a registry on purpose, to prove the probe (and,
if wanted, the clients) notice.

It forwards GET and HEAD to an upstream registry and damages manifest
responses as asked (see :data:`BREAKAGES`). It runs in a thread of the test
process on 127.0.0.1 and is shut down on exit. Being a stdlib
``http.server``, it also shows a trap: it takes a TLS ClientHello for an
HTTP/0.9 request and answers an HTML error page with no status line.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import ClassVar, Self

from tests.support.registry_probe import ProbeError, request

#: What the proxy can break, by name.
BREAKAGES = {
    "json-content-type": "manifests served as application/json",
    "head-zero-length": "HEAD on a manifest says Content-Length: 0",
    "head-no-digest": "HEAD on a manifest has no Docker-Content-Digest",
    "head-404": "HEAD on a manifest answers 404",
    "digest-other-bytes": "GET of a manifest by digest serves re-indented JSON",
    "wrong-digest-header": "GET of a manifest sends a wrong Docker-Content-Digest",
    "plain-error-body": "4xx answers have a plain-text body",
}

FORWARDED_HEADERS = (
    "Content-Type",
    "Docker-Content-Digest",
    "Docker-Distribution-Api-Version",
    "WWW-Authenticate",
)
WRONG_DIGEST = "sha256:" + "0" * 64


class _Handler(BaseHTTPRequestHandler):
    upstream: ClassVar[str] = ""
    breakages: ClassVar[frozenset[str]] = frozenset()
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._forward("GET")

    def do_HEAD(self) -> None:
        self._forward("HEAD")

    def _forward(self, method: str) -> None:
        accept = self.headers.get_all("Accept") or []
        broken = self.breakages
        is_manifest = "/manifests/" in self.path
        by_digest = is_manifest and ":" in self.path.rsplit("/", 1)[-1]
        if method == "HEAD" and is_manifest and "head-404" in broken:
            self._send(404, {"Content-Type": "application/json"}, b"", head=True)
            return
        try:
            # Always GET upstream so a HEAD can report the real length.
            upstream = request(self.upstream, "GET", self.path, accept, timeout=30.0)
        except ProbeError as error:
            self._send(502, {"Content-Type": "text/plain"}, str(error).encode(), method == "HEAD")
            return
        headers = {h: v for h in FORWARDED_HEADERS if (v := upstream.header(h)) is not None}
        body = upstream.body
        if is_manifest and upstream.status == 200:
            if "json-content-type" in broken:
                headers["Content-Type"] = "application/json"
            if method == "GET" and by_digest and "digest-other-bytes" in broken:
                body = json.dumps(json.loads(body), indent=3).encode()
            if method == "GET" and "wrong-digest-header" in broken:
                headers["Docker-Content-Digest"] = WRONG_DIGEST
            if method == "HEAD" and "head-no-digest" in broken:
                headers.pop("Docker-Content-Digest", None)
        if 400 <= upstream.status < 500 and "plain-error-body" in broken:
            headers["Content-Type"] = "text/plain"
            body = b"not found\n"
        length = len(body)
        if method == "HEAD" and is_manifest and "head-zero-length" in broken:
            length = 0
        self._send(upstream.status, headers, body, method == "HEAD", length)

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        head: bool,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head:
            self.wfile.write(body)


class BreakingProxy:
    """``with BreakingProxy(upstream_url, ["head-404"]) as proxy: proxy.url``"""

    def __init__(self, upstream: str, breakages: Iterable[str] = ()) -> None:
        chosen = frozenset(breakages)
        unknown = chosen - BREAKAGES.keys()
        if unknown:
            raise ValueError(f"unknown breakages: {sorted(unknown)}")
        handler = type(
            "Handler", (_Handler,), {"upstream": upstream.rstrip("/"), "breakages": chosen}
        )
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
