"""The blob store contract, run against every adapter through one fixture.

Whatever holds the bytes, callers rely on the same behaviour
(:mod:`blobstore.port`): a size for a stored digest and ``None`` otherwise;
reads of any range, ``KeyError`` for a missing blob, raised at the call;
writes that are idempotent and consume the file they are given; and a
redirect URL that either is ``None`` (the server streams) or serves exactly
the blob's bytes. To add an adapter, add a factory to ``STORES``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from blobstore.filesystem import FilesystemBlobStore
from blobstore.port import BlobStore
from ocimodel.digest import sha256_digest
from tests.support.moto_server import moto_s3  # noqa: F401 (a fixture)

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DATA = bytes(range(256)) * 40  # 10 KiB, every byte value


def _filesystem(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return FilesystemBlobStore(tmp_path / "store")


def _gcs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    from blobstore.gcs import GcsBlobStore
    from blobstore.signing import KeySigner

    emulator = request.getfixturevalue("gcs_emulator")
    key = request.getfixturevalue("signing_key")
    return GcsBlobStore(
        emulator.new_bucket(),
        signer=KeySigner(key.credentials()),
        client=emulator.client(),
        scratch=tmp_path / "scratch",
    )


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    from blobstore.s3 import S3BlobStore

    moto = request.getfixturevalue("moto_s3")
    return S3BlobStore(moto.new_bucket(), client_factory=moto.client, scratch=tmp_path / "scratch")


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], BlobStore]] = {
    "filesystem": _filesystem,
    "gcs": _gcs,
    "s3": _s3,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return STORES[request.param](request, tmp_path)


def _file_in_scratch(store: BlobStore, data: bytes, name: str = "upload") -> Path:
    path = store.scratch_dir() / name
    path.write_bytes(data)
    return path


def test_put_bytes_then_size_and_read(store: BlobStore) -> None:
    digest = sha256_digest(DATA)
    store.put_bytes(digest, DATA, LAYER)
    assert store.size(digest) == len(DATA)
    assert b"".join(store.read(digest)) == DATA


def test_put_file_consumes_the_file(store: BlobStore) -> None:
    digest = sha256_digest(DATA)
    path = _file_in_scratch(store, DATA)
    store.put_file(digest, path, LAYER)
    assert not path.exists()
    assert store.size(digest) == len(DATA)
    assert b"".join(store.read(digest)) == DATA


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, 1),
        (100, 200),
        (len(DATA) - 1, None),
        (500, len(DATA) + 100),
        (len(DATA), None),
    ],
)
def test_ranges(store: BlobStore, start: int, end: int | None) -> None:
    digest = sha256_digest(DATA)
    store.put_bytes(digest, DATA, LAYER)
    assert b"".join(store.read(digest, start, end)) == DATA[start:end]


def test_writes_are_idempotent(store: BlobStore) -> None:
    digest = sha256_digest(DATA)
    store.put_bytes(digest, DATA, LAYER)
    store.put_bytes(digest, DATA, LAYER)
    store.put_file(digest, _file_in_scratch(store, DATA, "first"), LAYER)
    second = _file_in_scratch(store, DATA, "second")
    store.put_file(digest, second, LAYER)
    assert not second.exists(), "a write of a stored digest still consumes its file"
    assert store.size(digest) == len(DATA)
    assert b"".join(store.read(digest)) == DATA


def test_missing_blobs(store: BlobStore) -> None:
    digest = sha256_digest(b"never stored")
    assert store.size(digest) is None
    with pytest.raises(KeyError):
        store.read(digest)  # at the call, before any iteration
    assert store.size("sha512:" + "ab" * 64) is None


def test_redirect_is_none_or_serves_the_bytes(store: BlobStore) -> None:
    digest = sha256_digest(DATA)
    store.put_bytes(digest, DATA, LAYER)
    url = store.redirect_url(digest)
    if url is None:  # this store streams through the server
        assert isinstance(store, FilesystemBlobStore)
        return
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == DATA
    assert store.redirect_url(digest) == url, "a hot blob reuses its URL"
