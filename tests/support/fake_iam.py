"""A small real HTTP server speaking the IAM Credentials ``signBlob`` API.

``POST /v1/projects/-/serviceAccounts/{email}:signBlob`` with a bearer token
and ``{"payload": base64}`` answers ``{"keyId", "signedBlob": base64}``: an
RSA-SHA256 (PKCS#1 v1.5) signature by the account's key, as Google's IAM
does. It is the only fake in the Google Cloud tests, at the one boundary
that has no local stand-in. It records every request (path, Authorization
header, decoded payload) so tests can assert what was sent, answers 401 to a
wrong token and 403 to an account it may not sign as, and can be told to answer a few
503s first to exercise the client's retries.

It also answers ``POST /token`` the way Google's OAuth token endpoint
answers a service account's signed JWT (``{"access_token", "expires_in"}``),
so a key file whose ``token_uri`` points here gets this server's token: the
caller's whole credential chain runs, offline.

It runs in-process on a thread (``ThreadingHTTPServer`` bound to 127.0.0.1
on port 0): there is nothing to spawn, and the test owns the key.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_SIGN_BLOB = re.compile(r"/v1/projects/-/serviceAccounts/([^/:]+):signBlob")


@dataclass(frozen=True)
class SignRequest:
    path: str
    authorization: str
    email: str
    payload: bytes


@dataclass
class FakeIam:
    """The server's state: accounts and their keys, the token it accepts,
    what it was asked."""

    keys: dict[str, rsa.RSAPrivateKey]
    token: str
    requests: list[SignRequest] = field(default_factory=list)
    #: Answer this many 503s before signing (for the retry test).
    failures_left: int = 0
    #: Access tokens handed out by ``POST /token``.
    token_grants: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def sign_requests(self) -> list[SignRequest]:
        with self.lock:
            return list(self.requests)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join()


def _handler(state: FakeIam) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests assert on state.requests instead

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._answer(status, {"error": {"code": status, "message": message}})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            match = _SIGN_BLOB.fullmatch(path)
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if path == "/token":
                with state.lock:
                    state.token_grants += 1
                self._answer(
                    200, {"access_token": state.token, "token_type": "Bearer", "expires_in": 3600}
                )
                return
            if match is None:
                self._error(404, f"no such method: {path}")
                return
            email = unquote(match.group(1))
            authorization = self.headers.get("Authorization", "")
            try:
                payload = base64.b64decode(json.loads(raw)["payload"], validate=True)
            except (ValueError, KeyError, TypeError):
                self._error(400, "the body must be {'payload': base64}")
                return
            with state.lock:
                state.requests.append(SignRequest(path, authorization, email, payload))
                if state.failures_left > 0:
                    state.failures_left -= 1
                    fail = True
                else:
                    fail = False
            if fail:
                self._error(503, "try again")
                return
            if authorization != f"Bearer {state.token}":
                self._error(401, "request had invalid authentication credentials")
                return
            key = state.keys.get(email)
            if key is None:  # what IAM says when the caller may not sign as email
                self._error(403, f"Permission 'iam.serviceAccounts.signBlob' denied on {email}")
                return
            signature = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
            self._answer(
                200,
                {
                    "keyId": f"key-for-{email.split('@')[0]}",
                    "signedBlob": base64.b64encode(signature).decode(),
                },
            )

    return Handler


def start_fake_iam(keys: dict[str, rsa.RSAPrivateKey], token: str) -> FakeIam:
    """Serve ``signBlob`` for the accounts in ``keys``, accepting ``token``."""
    state = FakeIam(keys=keys, token=token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.server = server
    state.thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-iam", daemon=True
    )
    state.thread.start()
    return state
