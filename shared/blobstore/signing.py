"""Signing blob URLs: who signs, and how often.

A blob GET answers a 307 to a V4 signed URL, so layer bytes never pass
through the function. A V4 URL carries its own proof: the client's request
is rebuilt by Cloud Storage into a *canonical request* (method, path, the
query parameters sorted, the signed headers, ``UNSIGNED-PAYLOAD``), hashed
into a *string to sign* (``GOOG4-RSA-SHA256``, the timestamp, the credential
scope, the hash), and checked against ``X-Goog-Signature``: an RSA-SHA256
signature by the service account named in ``X-Goog-Credential``.
google-cloud-storage builds all of that (``Blob.generate_signed_url``); the
only thing it needs from us is a way to sign bytes as some service account.
That is the :class:`Signer` port, with two adapters:

``KeySigner``
    A service-account key file (``GOOGLE_APPLICATION_CREDENTIALS``): the
    RSA key is in memory and signing is local and free.
``IamSigner``
    No key file, as on Cloud Functions and Cloud Run, where the identity is
    the runtime service account served by the metadata server. Signing is a
    call to the IAM Credentials API, ``POST {endpoint}/v1/projects/-/
    serviceAccounts/{email}:signBlob`` with ``{"payload": base64}``,
    authorised by the runtime identity's access token; the answer is
    ``{"keyId", "signedBlob": base64}``. The runtime account needs
    ``roles/iam.serviceAccountTokenCreator`` on the signing account (itself,
    by default). The library can do this call too (``service_account_email``
    plus ``access_token``), but it hard-codes the ``https://iamcredentials.``
    host, so a test could never point it at a local server; this adapter
    takes the endpoint as a setting (``NIXERY_IAM_ENDPOINT``) instead.
    Transient answers (429, 5xx, connection errors) are retried with
    ``google.api_core.retry`` backoff.

:class:`SigningCredentials` presents a :class:`Signer` to the library as the
``google.auth.credentials.Signing`` it expects.

A signing call costs a round trip (IAM) and every blob pull asks for a URL,
so each digest's URL is cached until only a fifth of its lifetime is left
(:class:`blobstore.urlcache.SignedUrlCache`).
"""

from __future__ import annotations

import base64
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

import google.auth
import google.auth.credentials
import google.auth.transport.requests
import requests
from google.api_core import retry as api_retry
from google.auth import crypt
from google.oauth2 import service_account

DEFAULT_IAM_ENDPOINT = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: Answers worth another try: throttling and the server's own trouble.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_IAM_RETRY = api_retry.Retry(
    predicate=lambda exc: isinstance(
        exc, TransientSigningError | requests.ConnectionError | requests.Timeout
    ),
    initial=0.1,
    maximum=2.0,
    timeout=30.0,
)


class SigningError(Exception):
    """Signing failed for good (refused, malformed answer, no identity)."""


class TransientSigningError(SigningError):
    """The IAM API answered with a status worth retrying (429, 5xx)."""


class Signer(Protocol):
    @property
    def email(self) -> str:
        """The service account whose signature this is."""
        ...

    def sign(self, message: bytes) -> bytes:
        """An RSA-SHA256 (PKCS#1 v1.5) signature of ``message``."""
        ...


class KeySigner:
    """Signs locally with a service-account key."""

    def __init__(self, credentials: service_account.Credentials) -> None:
        self._credentials = credentials

    @classmethod
    def from_file(cls, path: str) -> KeySigner:
        credentials = service_account.Credentials.from_service_account_file(path)  # type: ignore[no-untyped-call]
        return cls(credentials)

    @property
    def email(self) -> str:
        return str(self._credentials.signer_email)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._credentials.sign_bytes(message))


class IamSigner:
    """Signs through the IAM Credentials ``signBlob`` API as ``email``,
    authorised by ``credentials`` (any google-auth credentials: the access
    token is fetched and refreshed by google-auth's ``AuthorizedSession``)."""

    def __init__(
        self,
        email: str,
        credentials: google.auth.credentials.Credentials,
        *,
        endpoint: str = DEFAULT_IAM_ENDPOINT,
        retry: api_retry.Retry = DEFAULT_IAM_RETRY,
        timeout_s: float = 10.0,
    ) -> None:
        self._email = email
        self._session = google.auth.transport.requests.AuthorizedSession(  # type: ignore[no-untyped-call]
            credentials
        )
        self._url = (
            f"{endpoint.rstrip('/')}/v1/projects/-/serviceAccounts/"
            f"{urllib.parse.quote(email, safe='@')}:signBlob"
        )
        self._retry = retry
        self._timeout_s = timeout_s

    @property
    def email(self) -> str:
        return self._email

    def sign(self, message: bytes) -> bytes:
        answer: dict[str, Any] = self._retry(self._call)(message)
        try:
            return base64.b64decode(answer["signedBlob"], validate=True)
        except (KeyError, TypeError, ValueError) as error:
            raise SigningError(
                f"signBlob answered without a signedBlob: {answer!r:.200}"
            ) from error

    def _call(self, message: bytes) -> dict[str, Any]:
        response = self._session.post(
            self._url,
            json={"payload": base64.b64encode(message).decode("ascii")},
            timeout=self._timeout_s,
        )
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientSigningError(f"signBlob answered {response.status_code}")
        if response.status_code != 200:
            raise SigningError(
                f"signBlob as {self._email} answered {response.status_code}: {response.text[:300]}"
            )
        answer: dict[str, Any] = response.json()
        return answer


class LazySigner:
    """Builds the real signer on first use, once, thread-safe: processes that
    never redirect (the builder job) never look up credentials."""

    def __init__(self, factory: Callable[[], Signer]) -> None:
        self._factory = factory
        self._signer: Signer | None = None
        self._lock = threading.Lock()

    def _get(self) -> Signer:
        with self._lock:
            if self._signer is None:
                self._signer = self._factory()
            return self._signer

    @property
    def email(self) -> str:
        return self._get().email

    def sign(self, message: bytes) -> bytes:
        return self._get().sign(message)


def signer_from_environment(
    service_account_email: str = "", iam_endpoint: str = DEFAULT_IAM_ENDPOINT
) -> Signer:
    """The signer for this process's identity (application default credentials).

    A service-account key (``GOOGLE_APPLICATION_CREDENTIALS``) signs locally,
    unless ``service_account_email`` names another account. Otherwise IAM
    signs as ``service_account_email`` or, when empty, as the runtime
    identity's own account (on Google Cloud: the metadata server's)."""
    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    if isinstance(credentials, service_account.Credentials) and (
        not service_account_email or service_account_email == credentials.signer_email
    ):
        return KeySigner(credentials)
    email = service_account_email or _runtime_email(credentials)
    return IamSigner(email, credentials, endpoint=iam_endpoint)


def _runtime_email(credentials: google.auth.credentials.Credentials) -> str:
    email = getattr(credentials, "service_account_email", None)
    if email == "default":  # Compute Engine credentials learn it on refresh
        credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
        email = getattr(credentials, "service_account_email", None)
    if not isinstance(email, str) or "@" not in email:
        raise SigningError(
            "cannot tell which service account signs blob URLs for these credentials "
            f"({type(credentials).__name__}): set NIXERY_SIGNING_SERVICE_ACCOUNT"
        )
    return email


class _CryptSigner(crypt.Signer):
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    @property
    def key_id(self) -> str | None:
        return None

    def sign(self, message: str | bytes) -> bytes:
        data = message.encode("utf-8") if isinstance(message, str) else message
        return self._signer.sign(data)


class SigningCredentials(google.auth.credentials.Signing):
    """A :class:`Signer` as the ``Signing`` credentials google-cloud-storage
    takes in ``generate_signed_url(credentials=...)``."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def sign_bytes(self, message: str | bytes) -> bytes:
        data = message.encode("utf-8") if isinstance(message, str) else message
        return self._signer.sign(data)

    @property
    def signer_email(self) -> str:
        return self._signer.email

    @property
    def signer(self) -> crypt.Signer:
        return _CryptSigner(self._signer)
