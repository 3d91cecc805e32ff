"""Fixtures for the blob store tests: one fake-gcs-server per module (a fresh
bucket per test keeps tests apart without restarts), and service-account
keys generated on the spot (RSA 2048, as Google issues them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from blobstore import gcs
from blobstore.gcs import GcsBlobStore
from blobstore.signing import Signer
from tests.support.gcs_emulator import GcsEmulator, start_gcs_emulator
from tests.support.service_account import ServiceAccountKey, make_key


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
