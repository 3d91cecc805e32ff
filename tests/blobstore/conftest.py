"""Fixtures for the blob store tests: one fake-gcs-server per module (a fresh
bucket per test keeps tests apart without restarts), and service-account
keys generated on the spot (RSA 2048, as Google issues them)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from blobstore import gcs
from blobstore.gcs import GcsBlobStore
from blobstore.signing import Signer
from tests.support.gcs_emulator import GcsEmulator, start_gcs_emulator


@dataclass(frozen=True)
class ServiceAccountKey:
    email: str
    private_key: rsa.RSAPrivateKey

    def info(self, token_uri: str = "https://oauth2.googleapis.com/token") -> dict[str, str]:
        """The JSON of a key file, as the Cloud console downloads it."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "nixery-test",
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": self.email,
            "client_id": "1",
            "token_uri": token_uri,
        }

    def write(self, path: Path, token_uri: str = "https://oauth2.googleapis.com/token") -> Path:
        path.write_text(json.dumps(self.info(token_uri)))
        return path

    def credentials(self) -> service_account.Credentials:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_info(self.info())  # type: ignore[no-untyped-call]
        )
        return credentials


def make_key(name: str) -> ServiceAccountKey:
    return ServiceAccountKey(
        email=f"{name}@nixery-test.iam.gserviceaccount.com",
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture(scope="session")
def signing_key() -> ServiceAccountKey:
    return make_key("blob-signer")


@pytest.fixture(scope="session")
def runtime_key() -> ServiceAccountKey:
    """The key IAM holds for the runtime service account (never on disk)."""
    return make_key("runtime")


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def bucket(gcs_emulator: GcsEmulator) -> str:
    return gcs_emulator.new_bucket()


def make_store(
    emulator: GcsEmulator,
    bucket: str,
    signer: Signer,
    *,
    url_ttl_s: int = gcs.DEFAULT_URL_TTL_S,
    chunk_size: int = gcs.DEFAULT_CHUNK_SIZE,
    multipart_limit: int = gcs.MULTIPART_LIMIT,
    clock: Callable[[], float] = time.time,
) -> GcsBlobStore:
    """A store on ``bucket`` of the emulator, through a client of its own."""
    return GcsBlobStore(
        bucket,
        signer=signer,
        client=emulator.client(),
        url_ttl_s=url_ttl_s,
        chunk_size=chunk_size,
        multipart_limit=multipart_limit,
        clock=clock,
    )
