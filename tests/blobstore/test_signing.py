"""Signed blob URLs: the V4 signature, the URL cache, and IAM ``signBlob``.

The emulator serves signed URLs without checking them, so every URL here is
verified by recomputing its V4 signature from the URL alone
(:mod:`tests.support.v4_signature`) with the service account's public key. The IAM
path signs through a real HTTP server speaking the IAM Credentials API
(:mod:`tests.support.fake_iam`); the tests assert what reached it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from google.oauth2.credentials import Credentials as TokenCredentials

from blobstore.signing import IamSigner, KeySigner, Signer, SigningError
from ocimodel.digest import sha256_digest
from tests.blobstore.conftest import make_store
from tests.support.fake_iam import FakeIam, start_fake_iam
from tests.support.gcs_emulator import GcsEmulator
from tests.support.service_account import ServiceAccountKey
from tests.support.v4_signature import verify_v4_url

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TOKEN = "ya29.test-runtime-token"


class CountingSigner:
    """A real signer that counts its calls (for the cache tests)."""

    def __init__(self, inner: Signer) -> None:
        self.inner = inner
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def email(self) -> str:
        return self.inner.email

    def sign(self, message: bytes) -> bytes:
        with self._lock:
            self.calls += 1
        return self.inner.sign(message)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def token_credentials(token: str) -> TokenCredentials:
    """A bare access token, as the metadata server hands one out."""
    return TokenCredentials(token=token)  # type: ignore[no-untyped-call]


@pytest.fixture
def fake_iam(runtime_key: ServiceAccountKey) -> Iterator[FakeIam]:
    server = start_fake_iam({runtime_key.email: runtime_key.private_key}, TOKEN)
    try:
        yield server
    finally:
        server.stop()


def test_key_file_signature_verifies(
    gcs_emulator: GcsEmulator, bucket: str, signing_key: ServiceAccountKey, tmp_path: Path
) -> None:
    signer = KeySigner.from_file(str(signing_key.write(tmp_path / "key.json")))
    store = make_store(gcs_emulator, bucket, signer, url_ttl_s=900)
    digest = sha256_digest(b"signed locally")
    before = datetime.now(UTC).replace(microsecond=0)
    url = store.redirect_url(digest)
    after = datetime.now(UTC)
    public_key = signing_key.private_key.public_key()
    signed = verify_v4_url(url, public_key)
    assert signed.email == signing_key.email
    assert signed.expires_s == 900
    assert before <= signed.signed_at <= after
    assert f"/{bucket}/blobs/sha256/{digest.removeprefix('sha256:')}?" in url
    # The verifier really verifies: another object's path, or another
    # lifetime, breaks the signature.
    other = sha256_digest(b"something else").removeprefix("sha256:")
    with pytest.raises(InvalidSignature):
        verify_v4_url(url.replace(digest.removeprefix("sha256:"), other), public_key)
    with pytest.raises(InvalidSignature):
        verify_v4_url(url.replace("X-Goog-Expires=900", "X-Goog-Expires=901"), public_key)


def test_urls_are_cached_until_a_fifth_of_their_life_is_left(
    gcs_emulator: GcsEmulator, bucket: str, signing_key: ServiceAccountKey
) -> None:
    signer = CountingSigner(KeySigner(signing_key.credentials()))
    clock = Clock()
    store = make_store(gcs_emulator, bucket, signer, url_ttl_s=600, clock=clock)
    hot, cold = sha256_digest(b"hot"), sha256_digest(b"cold")
    first = store.redirect_url(hot)
    assert signer.calls == 1
    clock.now += 479  # 121 s of 600 left: still more than a fifth
    assert store.redirect_url(hot) == first
    assert signer.calls == 1
    store.redirect_url(cold)
    assert signer.calls == 2, "each digest has its own URL"
    clock.now += 1  # 120 s left: refresh
    store.redirect_url(hot)
    assert signer.calls == 3
    store.redirect_url(hot)
    assert signer.calls == 3


def test_concurrent_misses_sign_once(
    gcs_emulator: GcsEmulator, bucket: str, signing_key: ServiceAccountKey
) -> None:
    signer = CountingSigner(KeySigner(signing_key.credentials()))
    store = make_store(gcs_emulator, bucket, signer)
    digest = sha256_digest(b"thundering herd")
    threads = 16
    barrier = threading.Barrier(threads)
    urls: list[str] = []

    def pull() -> None:
        barrier.wait()
        urls.append(store.redirect_url(digest))

    workers = [threading.Thread(target=pull) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(urls) == threads
    assert len(set(urls)) == 1
    assert signer.calls == 1


def test_sign_blob_through_iam(
    gcs_emulator: GcsEmulator, bucket: str, runtime_key: ServiceAccountKey, fake_iam: FakeIam
) -> None:
    signer = IamSigner(runtime_key.email, token_credentials(TOKEN), endpoint=fake_iam.endpoint)
    store = make_store(gcs_emulator, bucket, signer)
    data = b"signed by IAM"
    digest = sha256_digest(data)
    store.put_bytes(digest, data, LAYER)
    url = store.redirect_url(digest)
    signed = verify_v4_url(url, runtime_key.private_key.public_key())
    assert signed.email == runtime_key.email
    [request] = fake_iam.sign_requests()
    assert request.path == f"/v1/projects/-/serviceAccounts/{runtime_key.email}:signBlob"
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.payload == signed.string_to_sign.encode()
    assert requests.get(url, timeout=10).content == data
    assert store.redirect_url(digest) == url
    assert len(fake_iam.sign_requests()) == 1, "a cached URL costs no signBlob call"


def test_sign_blob_retries_transient_failures(
    runtime_key: ServiceAccountKey, fake_iam: FakeIam
) -> None:
    fake_iam.failures_left = 2
    signer = IamSigner(runtime_key.email, token_credentials(TOKEN), endpoint=fake_iam.endpoint)
    signature = signer.sign(b"message")
    runtime_key.private_key.public_key().verify(
        signature, b"message", padding.PKCS1v15(), hashes.SHA256()
    )
    assert len(fake_iam.sign_requests()) == 3


def test_sign_blob_refusal_is_reported_without_retrying(
    runtime_key: ServiceAccountKey, fake_iam: FakeIam
) -> None:
    signer = IamSigner(
        "someone-else@nixery-test.iam.gserviceaccount.com",
        token_credentials(TOKEN),
        endpoint=fake_iam.endpoint,
    )
    with pytest.raises(SigningError, match=r"answered 403.*signBlob' denied"):
        signer.sign(b"message")
    assert len(fake_iam.sign_requests()) == 1
