"""The Cloud Storage blob store against fake-gcs-server.

Everything runs against the real emulator binary (started once per module):
content types, ranged reads, idempotent writes racing from several threads
on both upload paths, a 40 MiB layer going up in chunks with memory that
follows the chunk size, and a signed URL the emulator serves. The signature
itself is checked in ``test_signing.py``, since the emulator does not.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest
import requests

from blobstore import gcs
from blobstore.gcs import GcsBlobStore
from blobstore.signing import KeySigner
from ocimodel.digest import sha256_digest
from tests.blobstore.conftest import make_store
from tests.blobstore.helpers import write_all_at_once, write_random
from tests.support.gcs_emulator import GcsEmulator
from tests.support.service_account import ServiceAccountKey
from tests.support.v4_signature import verify_v4_url

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
MIB = 1024 * 1024


@pytest.fixture
def store(gcs_emulator: GcsEmulator, bucket: str, signing_key: ServiceAccountKey) -> GcsBlobStore:
    return make_store(gcs_emulator, bucket, KeySigner(signing_key.credentials()))


# -- storage --------------------------------------------------------------


def test_put_bytes_stores_object_with_content_type(
    store: GcsBlobStore, gcs_emulator: GcsEmulator, bucket: str
) -> None:
    data = b'{"architecture":"amd64"}'
    digest = sha256_digest(data)
    store.put_bytes(digest, data, CONFIG)
    assert store.size(digest) == len(data)
    assert b"".join(store.read(digest)) == data
    stored = gcs_emulator.client().bucket(bucket).get_blob(gcs.object_name(digest))
    assert stored.name == "blobs/sha256/" + digest.removeprefix("sha256:")
    assert stored.content_type == CONFIG


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, 100)),
        (10, 20, slice(10, 20)),
        (95, None, slice(95, 100)),
        (90, 500, slice(90, 100)),
        (99, 100, slice(99, 100)),
        (100, None, slice(100, 100)),
        (30, 30, slice(30, 30)),
    ],
)
def test_ranges_are_read_in_pieces(
    store: GcsBlobStore,
    monkeypatch: pytest.MonkeyPatch,
    start: int,
    end: int | None,
    expected: slice,
) -> None:
    monkeypatch.setattr(gcs, "READ_CHUNK_SIZE", 7)  # many pieces from a small blob
    data = bytes(range(100))
    digest = sha256_digest(data)
    store.put_bytes(digest, data, LAYER)
    pieces = list(store.read(digest, start, end))
    assert b"".join(pieces) == data[expected]
    assert all(len(piece) <= 7 for piece in pieces)


def test_missing_and_malformed_digests(store: GcsBlobStore) -> None:
    absent = sha256_digest(b"never stored")
    assert store.size(absent) is None
    with pytest.raises(KeyError):
        store.read(absent)
    assert store.size("sha512:" + "0" * 128) is None
    assert store.size("sha256:../../etc") is None
    with pytest.raises(ValueError, match="not a sha256 digest"):
        store.put_bytes("sha256:ABC", b"x", LAYER)


def test_absence_is_not_cached(store: GcsBlobStore) -> None:
    data = b"appears later"
    digest = sha256_digest(data)
    assert store.size(digest) is None
    store.put_bytes(digest, data, LAYER)
    assert store.size(digest) == len(data)


def test_repeated_write_keeps_the_first_object(
    store: GcsBlobStore, gcs_emulator: GcsEmulator, bucket: str
) -> None:
    data = b"layer bytes"
    digest = sha256_digest(data)
    store.put_bytes(digest, data, LAYER)
    first = gcs_emulator.client().bucket(bucket).get_blob(gcs.object_name(digest)).generation
    # A fresh store (no size cache) reaches the upload and gets a 412.
    again = make_store(gcs_emulator, bucket, store._signer)
    scratch = again.scratch_dir() / "again"
    scratch.write_bytes(data)
    again.put_file(digest, scratch, LAYER)
    assert not scratch.exists(), "put_file consumes its file"
    latest = gcs_emulator.client().bucket(bucket).get_blob(gcs.object_name(digest)).generation
    assert latest == first


@pytest.mark.parametrize("size", [64 * 1024, 3 * MIB], ids=["multipart", "resumable-copy"])
def test_concurrent_writers_of_one_digest_all_succeed_once(
    gcs_emulator: GcsEmulator,
    bucket: str,
    signing_key: ServiceAccountKey,
    tmp_path: Path,
    size: int,
) -> None:
    writers = 8
    source = tmp_path / "layer"
    digest = write_random(source, size)
    data = source.read_bytes()
    signer = KeySigner(signing_key.credentials())
    # Each writer has its own store and client, as separate builders would;
    # a 1 MiB multipart limit sends the larger case down the resumable path.
    stores = [
        make_store(gcs_emulator, bucket, signer, multipart_limit=MIB, chunk_size=MIB)
        for _ in range(writers)
    ]
    files, errors = write_all_at_once(stores, digest, data, tmp_path, LAYER)
    assert errors == []
    assert gcs_emulator.object_names(bucket) == [gcs.object_name(digest)], "no tmp/ left"
    assert b"".join(stores[0].read(digest)) == data
    assert not any(path.exists() for path in files)


def test_large_file_streams_with_flat_memory(
    gcs_emulator: GcsEmulator, bucket: str, signing_key: ServiceAccountKey, tmp_path: Path
) -> None:
    size = 40 * MIB
    path = tmp_path / "big-layer"
    digest = write_random(path, size)
    chunk = 2 * MIB
    store = make_store(gcs_emulator, bucket, KeySigner(signing_key.credentials()), chunk_size=chunk)
    tracemalloc.start()
    try:
        store.put_file(digest, path, LAYER)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read_back = hashlib.sha256()
        for piece in store.read(digest):
            read_back.update(piece)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "sha256:" + read_back.hexdigest() == digest
    assert store.size(digest) == size
    assert gcs_emulator.object_names(bucket) == [gcs.object_name(digest)]
    # Memory follows the chunk, not the file: a multipart upload (or a
    # download into one buffer) would hold all 40 MiB at once.
    assert upload_peak < 3 * chunk, upload_peak
    assert read_peak < 3 * gcs.READ_CHUNK_SIZE < size / 3, read_peak


def test_signed_url_is_served_by_the_emulator(
    store: GcsBlobStore, gcs_emulator: GcsEmulator, signing_key: ServiceAccountKey
) -> None:
    data = b"served by redirect"
    digest = sha256_digest(data)
    store.put_bytes(digest, data, LAYER)
    url = store.redirect_url(digest)
    assert url.startswith(gcs_emulator.endpoint + "/")
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    verify_v4_url(url, signing_key.private_key.public_key())
