"""``POST /_nixery/prebuild``: start a prebuild from Cloud Scheduler, authenticated.

Where it lives
    In the manifest function, under ``/_nixery/``, outside the registry's
    ``/v2/`` space so no image name can ever collide with it. The manifest
    function already holds everything a prebuild needs (settings, metadata
    store, source resolver, the launcher with ``run.jobs.runWithOverrides``)
    and the load balancer's URL map already sends every non-blob path to it.
    A third function would duplicate that wiring, its deployment and its IAM
    grants for one request an hour. The cost to pulls is nil: nothing here is
    imported until the first trigger request.

Who may call it
    The manifest function is public (``allUsers`` may invoke it: it is a
    registry), so Google's front end does not check identities and the
    function must. The caller sends a Google-signed OIDC identity token as
    ``Authorization: Bearer <token>``, which is what Cloud Scheduler's
    ``oidc_token`` sends. The token is verified with google-auth
    (``google.oauth2.id_token.verify_token``) against Google's signing
    certificates (``NIXERY_TRIGGER_CERTS_URL``, cached for their
    ``Cache-Control: max-age``): signature, expiry, the audience
    (``NIXERY_TRIGGER_AUDIENCE``, the URL Scheduler calls), Google's issuer,
    then a verified ``email`` among ``NIXERY_TRIGGER_ALLOWED_SA``.

    ========================================  ==================================
    request                                   answer
    ========================================  ==================================
    no token, not a bearer token, malformed,  401 ``UNAUTHORIZED`` with
    bad signature, expired, wrong audience    ``WWW-Authenticate: Bearer``
    or issuer
    valid token of another account            403 ``DENIED``
    valid token, bad body                     400 ``NAME_INVALID``
    valid token, good body                    202 with one entry per image
    not POST                                  405 ``UNSUPPORTED``
    certificates unreachable                  503 ``UNAVAILABLE``
    ========================================  ==================================

    The identity is checked before the body is read, so an anonymous caller
    costs no parsing, no spec resolution and no database read.

What it does
    The body is ``{"images": ["shell/git", "hello:latest", ...], "tasks": 4}``
    (``tasks`` optional). The images go through :mod:`registry.prebuild`
    exactly as ``nixery prebuild`` sends them: resolved, cache-checked,
    claimed, then one job execution whose tasks split the list. The answer
    does not wait for the builds: ``202`` with each image's status
    (``cached``, ``started``, ``building``, ``failed``) and build id, and the
    execution names.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from launcher.port import Launcher
from metastore.port import MetadataStore
from nixspec.sources import SourceResolver
from ocimodel.errors import ErrorCode, RegistryError
from registry import prebuild
from registry.http import json_response
from registry.logs import TRACE
from registry.settings import Settings

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
MAX_IMAGES = 500  # one request's work: each image costs a few metadata calls
MAX_BODY_BYTES = 256 * 1024
CLOCK_SKEW_S = 10  # tolerated difference between Google's clock and ours
DEFAULT_CERTS_MAX_AGE_S = 3600.0  # when the answer names no max-age
MIN_REFETCH_S = 60.0  # an unknown key id refetches at most this often
FETCH_TIMEOUT_S = 10.0
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nixery-prebuild", error="invalid_token"'}


def _unauthorized(message: str) -> RegistryError:
    return RegistryError(ErrorCode.UNAUTHORIZED, message, headers=dict(_CHALLENGE))


@dataclass
class CertsCache:
    """Google's signing certificates, fetched when missing or stale.

    Callable as a ``google.auth.transport.Request`` (the only request
    ``verify_token`` makes is the GET of the certificates), answered from the
    cache while it is fresh.
    """

    timeout_s: float = FETCH_TIMEOUT_S
    clock: Callable[[], float] = time.monotonic
    fetches: int = 0
    _entries: dict[str, tuple[float, float, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, url: str, method: str = "GET", **_: Any) -> _Answer:
        with self._lock:
            entry = self._entries.get(url)
            now = self.clock()
            if entry is None or entry[0] <= now:
                entry = self._fetch(url, now)
                self._entries[url] = entry
        return _Answer(200, entry[2])

    def refresh(self, url: str) -> bool:
        """Refetch ``url`` early (a token names a key we do not have: Google
        rotated its keys); at most once per :data:`MIN_REFETCH_S`."""
        with self._lock:
            entry = self._entries.get(url)
            now = self.clock()
            if entry is not None and now - entry[1] < MIN_REFETCH_S:
                return False
            self._entries[url] = self._fetch(url, now)
            return True

    def _fetch(self, url: str, now: float) -> tuple[float, float, bytes]:
        from google.auth import exceptions

        self.fetches += 1
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:
                data = answer.read()
                max_age = _max_age(answer.headers.get("Cache-Control", ""))
        except (OSError, urllib.error.URLError) as exc:
            raise exceptions.TransportError(f"cannot fetch {url}: {exc}") from exc  # type: ignore[no-untyped-call]
        return now + max_age, now, data


@dataclass(frozen=True)
class _Answer:
    """What google-auth reads of an answer: ``status`` and ``data``."""

    status: int
    data: bytes

    @property
    def headers(self) -> Mapping[str, str]:
        return {}


def _max_age(cache_control: str) -> float:
    for part in cache_control.split(","):
        key, _, value = part.strip().partition("=")
        if key.lower() == "max-age" and value.isdigit():
            return max(float(value), MIN_REFETCH_S)
    return DEFAULT_CERTS_MAX_AGE_S


def _key_id(token: str) -> str:
    try:
        header = token.split(".", 1)[0]
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, UnicodeDecodeError):
        return ""
    return str(data.get("kid", "")) if isinstance(data, dict) else ""


@dataclass
class IdentityVerifier:
    audience: str
    allowed: tuple[str, ...]
    certs_url: str
    certs: CertsCache = field(default_factory=CertsCache)

    def verify(self, authorization: str) -> str:
        """The caller's service account email; raises 401/403/503 RegistryErrors."""
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("an OIDC identity token is required: Authorization: Bearer <token>")
        claims = self._decode(token)
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise _unauthorized("the token was not issued by Google")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is not True:
            raise _unauthorized("the token carries no verified email")
        if email not in self.allowed:
            raise RegistryError(
                ErrorCode.DENIED, f"{email} may not trigger prebuilds on this registry"
            )
        return email

    def _decode(self, token: str) -> Mapping[str, Any]:
        from google.auth import exceptions
        from google.oauth2 import id_token

        def decode() -> Mapping[str, Any]:
            return id_token.verify_token(
                token,
                self.certs,  # type: ignore[arg-type]  # a callable Request, see CertsCache
                audience=self.audience,
                certs_url=self.certs_url,
                clock_skew_in_seconds=CLOCK_SKEW_S,
            )

        try:
            try:
                return decode()
            except ValueError:
                kid = _key_id(token)
                known = json.loads(self.certs(self.certs_url).data)
                if kid and kid not in known and self.certs.refresh(self.certs_url):
                    return decode()
                raise
        except exceptions.TransportError as exc:
            raise RegistryError(
                ErrorCode.UNAVAILABLE,
                f"cannot check the token: {exc}",
                headers={"Retry-After": "60"},
            ) from exc
        except ValueError as exc:  # google-auth's MalformedError and InvalidValue
            raise _unauthorized(f"invalid identity token: {exc}") from exc


class PrebuildTrigger:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        resolver: SourceResolver,
        launcher: Launcher,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.resolver = resolver
        self.launcher = launcher
        self.verifier = verifier or IdentityVerifier(
            settings.trigger_audience, settings.trigger_allowed_sa, settings.trigger_certs_url
        )

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            raise RegistryError(
                ErrorCode.UNSUPPORTED,
                f"{request.method} is not supported: POST a list of images",
                headers={"Allow": "POST"},
            )
        caller = self.verifier.verify(request.headers.get("Authorization", ""))
        images, tasks = self._body(request)
        items = prebuild.resolve(images, self.settings, self.resolver)
        items = prebuild.check_cache(items, self.metadata)
        items = prebuild.claim(
            items,
            self.metadata,
            start_s=self.settings.build_start_s,
            failure_ttl_s=self.settings.failure_ttl_s,
        )
        items, executions = prebuild.dispatch(
            items, self.launcher, self.metadata, self.settings, tasks=tasks, trace=TRACE.get()
        )
        return json_response(
            {
                "caller": caller,
                "executions": executions,
                "images": [item.to_json() for item in items],
            },
            status=202,
        )

    def _body(self, request: Request) -> tuple[list[str], int]:
        def bad(message: str) -> RegistryError:
            return RegistryError(ErrorCode.NAME_INVALID, message)

        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise bad(f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(request.get_data(cache=False) or b"null")
        except ValueError as exc:
            raise bad(
                f'the body is not JSON: {exc}; send {{"images": ["shell/git", ...]}}'
            ) from exc
        images = body.get("images") if isinstance(body, dict) else None
        if (
            not isinstance(images, list)
            or not images
            or not all(isinstance(i, str) for i in images)
        ):
            raise bad('the body must be {"images": ["shell/git", ...]} with at least one name')
        if len(images) > MAX_IMAGES:
            raise bad(f"at most {MAX_IMAGES} images per request, not {len(images)}")
        tasks = body.get("tasks", 0)
        if not isinstance(tasks, int) or isinstance(tasks, bool) or tasks < 0:
            raise bad('"tasks" must be a positive integer')
        return images, tasks
