"""HTTP basic authentication in front of both functions (off by default).

A private instance sets ``NIXERY_AUTH=basic`` and ``NIXERY_AUTH_HTPASSWD``
(an htpasswd file of bcrypt or SHA-crypt lines, :mod:`registry.htpasswd`;
on Cloud Functions a Secret Manager secret mounted as a file). Every request
then needs ``Authorization: Basic`` with a listed user's password; anything
else is answered as the distribution spec and Docker expect::

    401 UNAUTHORIZED
    WWW-Authenticate: Basic realm="nixery"        (NIXERY_AUTH_REALM)
    {"errors":[{"code":"UNAUTHORIZED","message":"authentication required", ...}]}

``docker login``, ``podman login``, ``skopeo --creds``/``--src-creds`` and
containerd's ``--user`` answer that challenge with basic credentials; Docker
sends them with every later request of the pull. Why basic and not Docker's
token flow: the token flow needs a token service and signing keys, and buys
per-repository scopes this registry has no use for (it is read-only, every
user may pull every image); basic auth over the HTTPS of Cloud Functions or
a TLS proxy is what distribution's own ``htpasswd`` mode does.

Where it runs
    :func:`registry.http.guarded` calls :meth:`BasicAuth.check` before the
    handler, for both functions: the blob function too, though a blob's
    signed redirect URL is itself a short-lived credential. The prebuild
    trigger (``/_nixery/prebuild``) is exempt: it checks its caller's Google
    OIDC token itself, which is what Cloud Scheduler sends.

Secrets
    Passwords are checked in constant time (:func:`registry.htpasswd.verify`).
    A bcrypt check costs ~50 ms and a pull makes a
    dozen requests, so a success is remembered for :data:`CACHE_TTL_S` as an
    HMAC of user and password under a random per-process key (never the
    password). Nothing from the ``Authorization`` header is ever logged; a
    failure is logged without the user name. An unknown user is checked
    against a listed user's hash, so it costs what a wrong password does.
    The file is re-read when its modification time changes, so users can be
    added without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.wrappers import Request

from ocimodel.errors import ErrorCode, RegistryError
from registry.htpasswd import Htpasswd, HtpasswdError, verify
from registry.routes import TRIGGER_PATH

log = logging.getLogger(__name__)

MODES = ("none", "basic")
DEFAULT_REALM = "nixery"
CACHE_TTL_S = 300.0
CACHE_ENTRIES = 1024
RELOAD_CHECK_S = 5.0  # how often the file's modification time is looked at
EXEMPT_PATHS = frozenset({TRIGGER_PATH})  # checks its own OIDC token


@dataclass(frozen=True)
class AuthSettings:
    mode: str = "none"
    htpasswd: Path | None = None
    realm: str = DEFAULT_REALM

    @classmethod
    def from_env(cls, env: Mapping[str, str], problems: list[str]) -> AuthSettings:
        """Read the settings and check the htpasswd file now, so a broken one
        stops the start with every other configuration problem."""
        mode = env.get("NIXERY_AUTH", "").strip().lower() or "none"
        raw_path = env.get("NIXERY_AUTH_HTPASSWD", "").strip()
        realm = env.get("NIXERY_AUTH_REALM", "").strip() or DEFAULT_REALM
        if mode not in MODES:
            problems.append(f"NIXERY_AUTH={mode!r} must be one of {', '.join(MODES)}")
            return cls()
        if '"' in realm or "\\" in realm or not realm.isprintable():
            problems.append("NIXERY_AUTH_REALM may not hold quotes, backslashes or controls")
            realm = DEFAULT_REALM
        if mode == "none":
            return cls(realm=realm)
        if not raw_path:
            problems.append("NIXERY_AUTH=basic needs NIXERY_AUTH_HTPASSWD (an htpasswd file)")
            return cls(mode, None, realm)
        path = Path(raw_path).expanduser()
        try:
            Htpasswd.load(path)
        except HtpasswdError as exc:
            problems.append(f"NIXERY_AUTH_HTPASSWD: {exc}")
        return cls(mode, path, realm)


@dataclass
class BasicAuth:
    """Checks requests against an htpasswd file."""

    path: Path
    realm: str = DEFAULT_REALM
    _looked_at: float = 0.0  # when the file's mtime was last looked at
    _users: Htpasswd = field(init=False)
    _mtime: float = field(init=False)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _verified: dict[bytes, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._mtime = os.stat(self.path).st_mtime
        self._users = Htpasswd.load(self.path)

    @property
    def challenge(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Basic realm="{self.realm}"'}

    def _refuse(self, message: str) -> RegistryError:
        return RegistryError(ErrorCode.UNAUTHORIZED, message, headers=self.challenge)

    def _reload(self, now: float) -> None:
        if now - self._looked_at < RELOAD_CHECK_S:
            return
        self._looked_at = now
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime != self._mtime:
                users = Htpasswd.load(self.path)
                with self._lock:
                    self._users, self._mtime = users, mtime
                    self._verified.clear()
                log.info("reloaded %s", self.path)
        except (OSError, HtpasswdError) as exc:  # keep the users we have
            log.error("cannot reload the htpasswd file: %s", exc)

    def check(self, request: Request) -> None:
        """Return if the request carries valid credentials; raise 401 otherwise."""
        if request.path in EXEMPT_PATHS:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.strip().partition(" ")
        if not header:
            raise self._refuse("authentication required")
        if scheme.lower() != "basic":
            raise self._refuse("this registry takes HTTP basic credentials")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise self._refuse("malformed basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise self._refuse("malformed basic credentials")
        now = time.monotonic()
        self._reload(now)
        if not self._valid(user, password, now):
            log.warning("refused credentials for %s %s", request.method, request.path[:200])
            raise self._refuse("invalid username or password")

    def _valid(self, user: str, password: str, now: float) -> bool:
        token = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            expires = self._verified.get(token)
            users = self._users
        if expires is not None and expires > now:
            return True
        hashed = users.users.get(user)
        # An unknown user is checked against a real hash too: the same cost.
        reference = hashed if hashed is not None else next(iter(users.users.values()))
        ok = verify(password, reference) and hashed is not None
        if ok:
            with self._lock:
                if len(self._verified) >= CACHE_ENTRIES:
                    self._verified.clear()
                self._verified[token] = now + CACHE_TTL_S
        return ok


def authenticator(settings: AuthSettings) -> BasicAuth | None:
    """The check for these settings; None when authentication is off."""
    if settings.mode != "basic" or settings.htpasswd is None:
        return None
    return BasicAuth(settings.htpasswd, settings.realm)
