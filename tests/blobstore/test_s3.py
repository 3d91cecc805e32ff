"""The S3 blob store against moto's S3 server (a real HTTP endpoint).

What the shared contract (``test_contract.py``) does not reach: the object
layout and Content-Type, multipart uploads of large layers with memory that
follows the part size, create-if-absent in each ``conditional_writes`` mode
(on an endpoint that honours ``If-None-Match``, one that refuses it, one
that reports a concurrent conditional write), writers racing on one digest,
transient faults retried by botocore, and presigned URLs: served by moto,
cached until shortly before expiry. Endpoint behaviour moto lacks comes
from a proxy in front of it (:func:`tests.support.moto_server.start_s3_proxy`).
"""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from blobstore import s3, s3_parts
from blobstore.s3 import ConditionalWritesUnsupported, S3BlobStore
from ocimodel.digest import sha256_digest
from tests.blobstore.helpers import write_all_at_once, write_random
from tests.support.fault_proxy import start_fault_proxy
from tests.support.moto_server import (
    MotoServer,
    Refusal,
    S3Proxy,
    moto_s3,  # noqa: F401 (a fixture)
    start_s3_proxy,
)

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
MIB = 1024 * 1024
PART = s3_parts.MIN_PART_SIZE  # small parts keep the large-file tests quick


@pytest.fixture
def bucket(moto_s3: MotoServer) -> str:
    return moto_s3.new_bucket()


def make_store(
    moto: MotoServer, bucket: str, tmp_path: Path, endpoint: str = "", **options: Any
) -> S3BlobStore:
    """A store of its own (own client, own caches), as a separate builder has."""
    options.setdefault("part_size", PART)
    options.setdefault("multipart_threshold", PART)
    return S3BlobStore(
        bucket,
        client_factory=lambda: moto.client(endpoint),
        scratch=tmp_path / "scratch",
        **options,
    )


@pytest.fixture
def proxies() -> Iterator[list[S3Proxy]]:
    started: list[S3Proxy] = []
    yield started
    for proxy in started:
        proxy.stop()


def hide_objects(method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
    """HEAD says absent: the store is then sure to write (a lost race, staged)."""
    return Refusal(404, "NotFound", "hidden") if method == "HEAD" else None


def copy_of(data: bytes, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- layout and uploads ---------------------------------------------------


def test_objects_are_content_addressed_with_their_content_type(
    moto_s3: MotoServer, bucket: str, tmp_path: Path
) -> None:
    store = make_store(moto_s3, bucket, tmp_path)
    config = b'{"architecture":"amd64"}'
    store.put_bytes(sha256_digest(config), config, CONFIG)
    key = "blobs/sha256/" + hashlib.sha256(config).hexdigest()
    assert moto_s3.keys(bucket) == [key]
    head = moto_s3.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == CONFIG
    assert head["ContentLength"] == len(config)
    with pytest.raises(ValueError, match="not a sha256 digest"):
        store.put_bytes("sha256:abc", config, CONFIG)


def test_large_file_goes_multipart_with_flat_memory(
    moto_s3: MotoServer, bucket: str, tmp_path: Path
) -> None:
    size = 40 * MIB
    path = tmp_path / "big-layer"
    digest = write_random(path, size)
    store = make_store(moto_s3, bucket, tmp_path, max_concurrency=2)
    store.size(digest)  # the client exists before measuring
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
    assert not path.exists()
    assert "sha256:" + read_back.hexdigest() == digest
    head = moto_s3.client().head_object(Bucket=bucket, Key=s3.object_key(digest))
    assert head["ContentLength"] == size
    assert head["ContentType"] == LAYER
    assert head["ETag"].endswith('-8"'), "eight 5 MiB parts, as one multipart upload"
    assert moto_s3.open_uploads(bucket) == []
    # Two parts in flight (and their bookkeeping), never the 40 MiB layer.
    assert upload_peak < 3 * PART < size / 2, upload_peak
    assert read_peak < 4 * s3.READ_CHUNK_SIZE, read_peak


def test_part_size_grows_to_stay_within_ten_thousand_parts(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_parts, "MAX_PARTS", 3)  # a 12 MiB file then needs three 5 MiB parts
    path = tmp_path / "layer"
    digest = write_random(path, 12 * MIB)
    make_store(moto_s3, bucket, tmp_path).put_file(digest, path, LAYER)
    head = moto_s3.client().head_object(Bucket=bucket, Key=s3.object_key(digest))
    assert head["ETag"].endswith('-3"')


# -- conditional writes ---------------------------------------------------


@pytest.mark.parametrize("size", [64 * 1024, 12 * MIB], ids=["put", "multipart"])
def test_conditional_write_never_replaces_a_stored_blob(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, proxies: list[S3Proxy], size: int
) -> None:
    first = os.urandom(size)
    digest = sha256_digest(first)
    make_store(moto_s3, bucket, tmp_path).put_bytes(digest, first, LAYER)
    proxy = start_s3_proxy(moto_s3.endpoint, rule=hide_objects)
    proxies.append(proxy)
    late = make_store(moto_s3, bucket, tmp_path, proxy.endpoint, conditional_writes="on")
    # Other bytes under the same name: only a refused write leaves the first.
    late.put_file(digest, copy_of(os.urandom(size), tmp_path, "late"), LAYER)
    conditional = [s for s in proxy.seen if s.headers.get("if-none-match") == "*"]
    assert [s.answered for s in conditional] == [412], "one conditional write, refused"
    assert b"".join(make_store(moto_s3, bucket, tmp_path).read(digest)) == first
    assert moto_s3.open_uploads(bucket) == [], "the refused upload's parts are aborted"


@pytest.mark.parametrize("size", [64 * 1024, 12 * MIB], ids=["put", "multipart"])
def test_without_conditions_the_later_writer_replaces(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, proxies: list[S3Proxy], size: int
) -> None:
    digest = sha256_digest(b"stand-in name")
    make_store(moto_s3, bucket, tmp_path).put_bytes(digest, b"first", LAYER)
    proxy = start_s3_proxy(moto_s3.endpoint, rule=hide_objects)
    proxies.append(proxy)
    late = make_store(moto_s3, bucket, tmp_path, proxy.endpoint, conditional_writes="off")
    second = os.urandom(size)
    late.put_file(digest, copy_of(second, tmp_path, "late"), LAYER)
    # The race that remains without conditions: harmless only because real
    # writers of one digest carry the same bytes.
    assert proxy.requests(header="if-none-match") == []
    assert b"".join(make_store(moto_s3, bucket, tmp_path).read(digest)) == second


def refuse_conditions(method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
    if "if-none-match" in headers:
        return Refusal(501, "NotImplemented", "A header you provided implies functionality "
                       "that is not implemented")  # fmt: skip
    return None


@pytest.mark.parametrize("size", [64 * 1024, 12 * MIB], ids=["put", "multipart"])
def test_auto_falls_back_to_existence_checks_on_a_refusing_endpoint(
    moto_s3: MotoServer,
    bucket: str,
    tmp_path: Path,
    proxies: list[S3Proxy],
    size: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = start_s3_proxy(moto_s3.endpoint, rule=refuse_conditions)
    proxies.append(proxy)
    store = make_store(moto_s3, bucket, tmp_path, proxy.endpoint)
    assert store.sends_conditions
    data = os.urandom(size)
    digest = sha256_digest(data)
    store.put_file(digest, copy_of(data, tmp_path, "layer"), LAYER)
    assert not store.sends_conditions
    assert "refused a conditional write" in caplog.text
    assert [s.answered for s in proxy.requests(header="if-none-match")] == [501]
    store.put_bytes(sha256_digest(b"next"), b"next", CONFIG)
    assert len(proxy.requests(header="if-none-match")) == 1, "never asked again"
    assert b"".join(store.read(digest)) == data
    assert moto_s3.keys(bucket) == sorted(
        [s3.object_key(digest), s3.object_key(sha256_digest(b"next"))]
    )
    assert moto_s3.open_uploads(bucket) == []


def test_on_refuses_an_endpoint_without_conditions(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, proxies: list[S3Proxy]
) -> None:
    proxy = start_s3_proxy(moto_s3.endpoint, rule=refuse_conditions)
    proxies.append(proxy)
    store = make_store(moto_s3, bucket, tmp_path, proxy.endpoint, conditional_writes="on")
    with pytest.raises(ConditionalWritesUnsupported, match="NIXERY_S3_CONDITIONAL_WRITES"):
        store.put_bytes(sha256_digest(b"x"), b"x", CONFIG)
    assert moto_s3.keys(bucket) == []


def test_a_conflicting_conditional_write_is_repeated(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, proxies: list[S3Proxy]
) -> None:
    conflicts = iter([True, True])  # the first two conditional PUTs meet a writer in flight

    def conflict(method: str, path: str, headers: Mapping[str, str]) -> Refusal | None:
        if "if-none-match" in headers and next(conflicts, False):
            return Refusal(409, "ConditionalRequestConflict", "a conflicting operation")
        return None

    proxy = start_s3_proxy(moto_s3.endpoint, rule=conflict)
    proxies.append(proxy)
    store = make_store(moto_s3, bucket, tmp_path, proxy.endpoint, conditional_writes="on")
    store.put_bytes(sha256_digest(b"contested"), b"contested", CONFIG)
    assert [s.answered for s in proxy.requests("PUT")] == [409, 409, 200]
    assert b"".join(store.read(sha256_digest(b"contested"))) == b"contested"


@pytest.mark.parametrize("mode", ["on", "off"])
@pytest.mark.parametrize("size", [64 * 1024, 12 * MIB], ids=["put", "multipart"])
def test_concurrent_writers_of_one_digest_all_succeed(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, size: int, mode: str
) -> None:
    writers = 6
    source = tmp_path / "layer"
    digest = write_random(source, size)
    data = source.read_bytes()
    stores = [
        make_store(moto_s3, bucket, tmp_path, conditional_writes=mode) for _ in range(writers)
    ]
    files, errors = write_all_at_once(stores, digest, data, tmp_path, LAYER)
    assert errors == []
    assert moto_s3.keys(bucket) == [s3.object_key(digest)]
    assert moto_s3.open_uploads(bucket) == []
    assert not any(path.exists() for path in files)
    for store in stores:
        assert store.size(digest) == size
    assert hashlib.sha256(b"".join(stores[0].read(digest))).hexdigest() == digest[7:]


@pytest.mark.parametrize("fault", ["503", "reset-before", "reset-after"])
@pytest.mark.parametrize("size", [64 * 1024, 12 * MIB], ids=["put", "multipart"])
def test_transient_faults_are_retried_by_botocore(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, size: int, fault: str
) -> None:
    # Every second write fails: with a 503, a reset before the server saw
    # it, or a reset after it was carried out (the repeat then meets the
    # stored object: 412, which is success).
    proxy = start_fault_proxy(
        moto_s3.endpoint.removeprefix("http://"),
        every=2,
        faults=(fault,),
        match=lambda method, path: method in ("PUT", "POST"),
    )
    try:
        store = make_store(moto_s3, bucket, tmp_path, proxy.url, conditional_writes="on")
        store.put_bytes(sha256_digest(b"first"), b"first", CONFIG)  # the first write passes
        data = os.urandom(size)
        digest = sha256_digest(data)
        store.put_file(digest, copy_of(data, tmp_path, "layer"), LAYER)
        injected = proxy.injected()
        statuses = [passed.status for passed in proxy.log]
    finally:
        proxy.stop()
    assert injected and {p.outcome for p in injected} == {fault}
    if fault == "reset-after" and size < PART:
        assert 412 in statuses, "the repeated PUT found its own object"
    assert b"".join(make_store(moto_s3, bucket, tmp_path).read(digest)) == data
    client = moto_s3.client()
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    if fault == "reset-after" and size >= PART:
        # CreateMultipartUpload is no idempotent call: the upload whose answer
        # was lost stays behind, empty, until the bucket's lifecycle rule.
        [orphan] = uploads
        parts = client.list_parts(Bucket=bucket, Key=orphan["Key"], UploadId=orphan["UploadId"])
        assert parts.get("Parts", []) == []
    else:
        assert uploads == []


def test_forbidden_head_is_an_error_not_absence(
    moto_s3: MotoServer, bucket: str, tmp_path: Path, proxies: list[S3Proxy]
) -> None:
    # Without s3:ListBucket, S3 answers a missing object's HEAD with 403.
    proxy = start_s3_proxy(
        moto_s3.endpoint,
        rule=lambda m, p, h: Refusal(403, "AccessDenied", "denied") if m == "HEAD" else None,
    )
    proxies.append(proxy)
    store = make_store(moto_s3, bucket, tmp_path, proxy.endpoint)
    with pytest.raises(ClientError, match="403"):
        store.size(sha256_digest(b"anything"))


# -- presigned URLs -------------------------------------------------------


def test_presigned_url_is_served_by_moto(moto_s3: MotoServer, bucket: str, tmp_path: Path) -> None:
    store = make_store(moto_s3, bucket, tmp_path, url_ttl_s=300)
    data = os.urandom(100_000)
    digest = sha256_digest(data)
    store.put_bytes(digest, data, LAYER)
    url = store.redirect_url(digest)
    parsed = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parsed.query)
    assert f"{parsed.scheme}://{parsed.netloc}" == moto_s3.endpoint
    assert parsed.path == f"/{bucket}/{s3.object_key(digest)}", "path-style"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["300"]
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert (ranged.status_code, ranged.content) == (206, data[10:20])


def test_presigned_urls_are_cached_until_shortly_before_expiry(
    moto_s3: MotoServer, bucket: str, tmp_path: Path
) -> None:
    now = [1_000_000.0]
    signed: list[str] = []
    store = make_store(moto_s3, bucket, tmp_path, url_ttl_s=600, clock=lambda: now[0])
    store.client.meta.events.register(
        "before-sign.s3.GetObject", lambda **kwargs: signed.append("GetObject")
    )
    digests = [sha256_digest(b"a"), sha256_digest(b"b")]
    first = store.redirect_url(digests[0])
    assert store.redirect_url(digests[0]) == first
    store.redirect_url(digests[1])
    assert len(signed) == 2, "one signature per digest"
    now[0] += 479  # 80 % of the lifetime: still reused
    assert store.redirect_url(digests[0]) == first
    assert len(signed) == 2
    now[0] += 2  # under a fifth left: signed anew
    store.redirect_url(digests[0])
    assert len(signed) == 3


def test_concurrent_misses_sign_once(moto_s3: MotoServer, bucket: str, tmp_path: Path) -> None:
    store = make_store(moto_s3, bucket, tmp_path)
    signed: list[str] = []
    store.client.meta.events.register("before-sign.s3.GetObject", lambda **kw: signed.append("x"))
    digest = sha256_digest(b"hot")
    barrier = threading.Barrier(8)
    urls: list[str] = []

    def fetch() -> None:
        barrier.wait()
        urls.append(store.redirect_url(digest))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(urls)) == 1 and len(urls) == 8
    assert len(signed) == 1


def test_the_client_is_made_on_first_use(tmp_path: Path) -> None:
    made: list[int] = []

    def factory() -> Any:
        made.append(1)
        raise RuntimeError("no credentials here")

    store = S3BlobStore("bucket-lazy", client_factory=factory, scratch=tmp_path)
    assert store.scratch_dir() == tmp_path and made == []
    with pytest.raises(RuntimeError, match="no credentials"):
        store.size(sha256_digest(b"x"))
    assert made == [1]


@pytest.mark.parametrize(
    "options",
    [{"conditional_writes": "sometimes"}, {"part_size": MIB}, {"max_concurrency": 0}],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    factory: Callable[[], Any] = lambda: None  # noqa: E731 (never called)
    with pytest.raises(ValueError):
        S3BlobStore("bucket-x", client_factory=factory, **options)
