"""moto's S3 as a real HTTP endpoint, and a proxy that changes its manners.

:func:`start_moto` runs ``moto_server -H 127.0.0.1 -p PORT`` as its own
process (the ``moto[s3]`` extra plus flask and flask-cors): a separate
process, so the memory a test measures in its own process is the client's
alone, and the embedded registry under test reaches it like any endpoint.
It keeps everything in memory; each test takes a fresh bucket
(:meth:`MotoServer.new_bucket`) instead of a restart. moto accepts any
credentials and does not check signatures, presigned URLs included (so a
test can prove a URL fetches the bytes, not that it is correctly signed).

:func:`start_s3_proxy` sits between a client and moto, forwards every
request, records what each carried (:attr:`S3Proxy.seen`) and, by a rule,
answers some itself with an S3 XML error: how a test shows the store an
endpoint without conditional writes (``501 NotImplemented``) or a
concurrent conditional write (``409 ConditionalRequestConflict``). It can
also drop headers on the way, as an endpoint that ignores them would.
"""

from __future__ import annotations

import http.client
import shutil
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from blobstore.s3 import make_client
from tests.support.procs import ServerProcess, free_port, http_ok, start_server, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

INSTALL_HINT = "pip install 'moto[s3]' flask flask-cors (in the dev extra)"
REGION = "us-east-1"
ACCESS_KEY = "moto-access-key"
SECRET_KEY = "moto-secret-key"  # moto takes any; nothing is checked


@dataclass
class MotoServer:
    server: ServerProcess
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def session(self) -> boto3.Session:
        """A session with test credentials: nothing read from the environment."""
        return boto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )

    def client(self, endpoint: str = "") -> S3Client:
        """A client as the store makes it, for this server (or a proxy of it)."""
        return make_client(endpoint_url=endpoint or self.endpoint, session=self.session())

    def env(self, bucket: str) -> dict[str, str]:
        """What a process under test needs to use ``bucket`` here, through
        the standard AWS chain, with no config file of the machine's."""
        return {
            "NIXERY_STORAGE_BACKEND": "s3",
            "S3_BUCKET": bucket,
            "NIXERY_S3_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def new_bucket(self) -> str:
        name = f"bucket-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def open_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads neither completed nor aborted."""
        answer = self.client().list_multipart_uploads(Bucket=bucket)
        return sorted(upload["Key"] for upload in answer.get("Uploads", []))

    def stop(self) -> None:
        self.server.stop()


def moto_binary() -> Path | None:
    found = Path(sys.executable).parent / "moto_server"
    return found if found.exists() else (Path(p) if (p := shutil.which("moto_server")) else None)


def start_moto(log_dir: Path) -> MotoServer:
    binary = moto_binary()
    if binary is None:
        pytest.skip(f"needs moto's S3 server: {INSTALL_HINT}")
    port = free_port()
    server = start_server(
        "moto_server", [binary, "-H", "127.0.0.1", "-p", str(port)], log_dir / "moto.log"
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/moto-api/"), server, what="answering")
    except BaseException:
        server.stop()
        raise
    return MotoServer(server, port)


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the session (import this fixture where used)."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


# -- the proxy --------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names, as the client sent them
    answered: int  # the status the client got


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


#: (method, path, headers) -> a refusal to answer instead of forwarding, or None.
Rule = Callable[[str, str, Mapping[str, str]], Refusal | None]


@dataclass
class S3Proxy:
    server: ThreadingHTTPServer
    thread: threading.Thread
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def requests(self, method: str = "", header: str = "") -> list[Seen]:
        """What was seen, optionally only ``method`` requests carrying ``header``."""
        with self.lock:
            return [
                s
                for s in self.seen
                if (not method or s.method == method) and (not header or header in s.headers)
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def start_s3_proxy(
    upstream: str, *, rule: Rule = lambda m, p, h: None, drop: frozenset[str] = frozenset()
) -> S3Proxy:
    """Proxy on 127.0.0.1 to ``upstream`` (``http://host:port``); headers
    named in ``drop`` (lower case) are removed before forwarding."""
    host, port = upstream.removeprefix("http://").split(":")
    # Expect: 100-continue was answered here already; the body is whole.
    hop_by_hop = {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "host",
        "content-length",
        "expect",
    }
    proxy: S3Proxy

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _forward(self) -> None:
            sent = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(sent) if sent else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            refusal = rule(self.command, self.path, headers)
            length_header = None
            if refusal is not None:
                status, reason = refusal.status, refusal.code
                data = (
                    f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{refusal.code}</Code>"
                    f"<Message>{refusal.message}</Message></Error>"
                ).encode()
                answer_headers = [("Content-Type", "application/xml")]
            else:
                connection = http.client.HTTPConnection(host, int(port), timeout=120)
                try:
                    connection.putrequest(self.command, self.path, skip_host=True)
                    connection.putheader("Host", f"{host}:{port}")
                    for key, value in headers.items():
                        if key not in hop_by_hop and key not in drop:
                            connection.putheader(key, value)
                    connection.putheader("Content-Length", str(len(body)))
                    connection.endheaders(body)
                    response = connection.getresponse()
                    data = response.read()
                finally:
                    connection.close()
                status, reason = response.status, response.reason
                answer_headers = [
                    (k, v) for k, v in response.getheaders() if k.lower() not in hop_by_hop
                ]
                # A HEAD's length is the object's, not the (empty) body's.
                length_header = response.getheader("Content-Length")
            with proxy.lock:
                proxy.seen.append(Seen(self.command, self.path, headers, status))
            self.send_response(status, reason)
            for key, value in answer_headers:
                self.send_header(key, value)
            length = len(data)
            if refusal is None and self.command == "HEAD" and length_header:
                length = int(length_header)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="s3-proxy")
    proxy = S3Proxy(server, thread)
    thread.start()
    return proxy
