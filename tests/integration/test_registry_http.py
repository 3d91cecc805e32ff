"""The embedded registry over real HTTP, building with real Nix.

Every test talks to ``nixery serve`` running as its own process (started by
the ``registry`` fixtures) and checks what a registry client would see:
status, headers, the spec's error envelope, and bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

import pytest
import requests

from tests.support.nixery_server import NixeryServer

pytestmark = [pytest.mark.nix, pytest.mark.integration]

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"
API_VERSION = "registry/2.0"


def errors(response: requests.Response) -> list[dict[str, Any]]:
    assert response.headers["Content-Type"] == "application/json", response.text
    assert response.headers["Docker-Distribution-API-Version"] == API_VERSION
    body = response.json()
    assert set(body) == {"errors"}
    result: list[dict[str, Any]] = body["errors"]
    assert result and all({"code", "message"} <= set(e) for e in result)
    return result


def error_code(response: requests.Response) -> str:
    code: str = errors(response)[0]["code"]
    return code


def test_base_endpoint_announces_the_api_version(shared_registry: NixeryServer) -> None:
    for path in ("/v2/", "/v2"):
        response = shared_registry.get(path)
        assert response.status_code == 200
        assert response.headers["Docker-Distribution-API-Version"] == API_VERSION
        assert response.json() == {}


def test_manifest_by_tag_head_and_digest_agree(shared_registry: NixeryServer) -> None:
    get = shared_registry.get("/v2/shell/hello/manifests/latest")
    assert get.status_code == 200, get.text
    digest = "sha256:" + hashlib.sha256(get.content).hexdigest()
    assert get.headers["Content-Type"] == DOCKER
    assert get.headers["Docker-Content-Digest"] == digest
    assert get.headers["ETag"] == f'"{digest}"'
    assert int(get.headers["Content-Length"]) == len(get.content)

    head = shared_registry.head("/v2/shell/hello/manifests/latest")
    assert head.status_code == 200
    for header in ("Content-Type", "Content-Length", "Docker-Content-Digest", "ETag"):
        assert head.headers[header] == get.headers[header]
    assert head.content == b""

    by_digest = shared_registry.get(f"/v2/shell/hello/manifests/{digest}")
    assert by_digest.status_code == 200
    assert by_digest.content == get.content
    assert by_digest.headers["Content-Type"] == DOCKER
    head_digest = shared_registry.head(f"/v2/shell/hello/manifests/{digest}")
    assert head_digest.headers["Content-Length"] == get.headers["Content-Length"]

    manifest = json.loads(get.content)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == DOCKER
    assert len(manifest["layers"]) >= 2


def test_query_strings_do_not_change_routes(shared_registry: NixeryServer) -> None:
    plain = shared_registry.head("/v2/shell/hello/manifests/latest")
    with_ns = shared_registry.head("/v2/shell/hello/manifests/latest?ns=docker.io")
    assert with_ns.status_code == 200
    assert with_ns.headers["Docker-Content-Digest"] == plain.headers["Docker-Content-Digest"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ([], DOCKER),
        (["*/*"], DOCKER),
        ([OCI], OCI),
        ([OCI, "application/vnd.oci.image.index.v1+json"], OCI),
        ([f"{OCI}, {DOCKER}, */*"], DOCKER),
        ([DOCKER, OCI, "application/json"], DOCKER),
        ([f"{DOCKER};q=0.5, {OCI}"], OCI),
    ],
    ids=["none", "wildcard", "oci-only", "oci-and-index", "containerd", "docker", "q-values"],
)
def test_accept_negotiation(
    shared_registry: NixeryServer, accept: list[str], expected: str
) -> None:
    # requests joins a list-valued header into one line; several lines are
    # tested with http.client below.
    headers = {"Accept": ", ".join(accept)} if accept else {}
    response = shared_registry.get("/v2/shell/hello/manifests/latest", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == expected
    assert json.loads(response.content)["mediaType"] == expected


def test_several_accept_lines(shared_registry: NixeryServer) -> None:
    import http.client

    host, port = shared_registry.host.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.putrequest("GET", "/v2/shell/hello/manifests/latest")
    for media in (OCI, "application/vnd.oci.image.index.v1+json"):
        connection.putheader("Accept", media)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200
    assert response.getheader("Content-Type") == OCI
    assert json.loads(body)["mediaType"] == OCI


def test_unacceptable_manifest_type(shared_registry: NixeryServer) -> None:
    response = shared_registry.get(
        "/v2/shell/hello/manifests/latest",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
    )
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"


def test_blobs_stream_with_length_range_and_digest(shared_registry: NixeryServer) -> None:
    manifest = shared_registry.get("/v2/shell/hello/manifests/latest").json()
    config_digest = manifest["config"]["digest"]
    config = shared_registry.get(f"/v2/shell/hello/blobs/{config_digest}")
    assert config.status_code == 200
    assert "sha256:" + hashlib.sha256(config.content).hexdigest() == config_digest
    diff_ids = config.json()["rootfs"]["diff_ids"]
    assert len(diff_ids) == len(manifest["layers"])

    for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
        blob = shared_registry.get(f"/v2/other/name/blobs/{layer['digest']}")
        assert blob.status_code == 200
        assert blob.headers["Docker-Content-Digest"] == layer["digest"]
        assert int(blob.headers["Content-Length"]) == layer["size"] == len(blob.content)
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]
        raw = gzip.decompress(blob.content)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            assert tar.getmembers()  # a valid, non-empty tar

    first = manifest["layers"][0]
    head = shared_registry.head(f"/v2/shell/hello/blobs/{first['digest']}")
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == first["size"]
    assert head.headers["Docker-Content-Digest"] == first["digest"]

    whole = shared_registry.get(f"/v2/shell/hello/blobs/{first['digest']}").content
    part = shared_registry.get(
        f"/v2/shell/hello/blobs/{first['digest']}", headers={"Range": "bytes=10-99"}
    )
    assert part.status_code == 206
    assert part.content == whole[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(whole)}"
    suffix = shared_registry.get(
        f"/v2/shell/hello/blobs/{first['digest']}", headers={"Range": "bytes=-5"}
    )
    assert suffix.status_code == 206 and suffix.content == whole[-5:]
    beyond = shared_registry.get(
        f"/v2/shell/hello/blobs/{first['digest']}", headers={"Range": f"bytes={len(whole)}-"}
    )
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"
    assert errors(beyond)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/shell/hello/blobs/sha256:" + "0" * 64, 404, "BLOB_UNKNOWN"),
        ("HEAD", "/v2/shell/hello/blobs/sha256:" + "0" * 64, 404, None),
        ("GET", "/v2/shell/hello/blobs/sha256:abc", 400, "DIGEST_INVALID"),
        ("GET", "/v2/shell/hello/blobs/notadigest", 400, "DIGEST_INVALID"),
        ("GET", "/v2/shell/hello/manifests/sha256:xyz", 400, "DIGEST_INVALID"),
        ("GET", "/v2/shell/hello/manifests/sha256:" + "1" * 64, 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/Shell/Hello/manifests/latest", 400, "NAME_INVALID"),
        ("GET", "/v2/shell//hello/manifests/latest", 400, "NAME_INVALID"),
        ("GET", "/v2/shell/hello/manifests/-bad-tag", 404, "MANIFEST_UNKNOWN"),
        ("PUT", "/v2/shell/hello/manifests/latest", 405, "UNSUPPORTED"),
        ("DELETE", "/v2/shell/hello/manifests/latest", 405, "UNSUPPORTED"),
        ("DELETE", "/v2/shell/hello/blobs/sha256:" + "0" * 64, 405, "UNSUPPORTED"),
        ("POST", "/v2/shell/hello/blobs/uploads/", 405, "UNSUPPORTED"),
        ("PATCH", "/v2/shell/hello/blobs/uploads/some-uuid", 405, "UNSUPPORTED"),
        ("GET", "/v2/shell/hello/unknown", 404, "NAME_UNKNOWN"),
        ("GET", "/nothing/here", 404, "NAME_UNKNOWN"),
        ("GET", "/v1/", 404, "NAME_UNKNOWN"),
        ("POST", "/", 405, "UNSUPPORTED"),
    ],
)
def test_errors_use_the_spec_envelope(
    shared_registry: NixeryServer, method: str, path: str, status: int, code: str | None
) -> None:
    response = requests.request(method, shared_registry.url + path, timeout=60)
    assert response.status_code == status, response.text
    assert response.headers["Docker-Distribution-API-Version"] == API_VERSION
    if method == "HEAD":
        assert response.content == b""
        return
    assert error_code(response) == code
    if status == 405:
        assert response.headers["Allow"] == "GET, HEAD"


def test_tags_list(shared_registry: NixeryServer) -> None:
    response = shared_registry.get("/v2/shell/hello/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": "shell/hello", "tags": ["latest"]}
    assert shared_registry.get("/v2/shell/hello/tags/list?n=0").json()["tags"] == []
    assert shared_registry.get("/v2/shell/hello/tags/list?last=latest").json()["tags"] == []


def test_same_packages_any_order_is_one_image(shared_registry: NixeryServer) -> None:
    a = shared_registry.head("/v2/shell/hello/manifests/latest")
    b = shared_registry.head("/v2/hello/shell/manifests/latest")
    c = shared_registry.head("/v2/hello/shell/bashinteractive/cacert/manifests/latest")
    assert a.status_code == b.status_code == c.status_code == 200
    assert a.headers["Docker-Content-Digest"] == b.headers["Docker-Content-Digest"]
    assert a.headers["Docker-Content-Digest"] == c.headers["Docker-Content-Digest"]


def test_if_none_match(shared_registry: NixeryServer) -> None:
    first = shared_registry.get("/v2/shell/hello/manifests/latest")
    again = shared_registry.get(
        "/v2/shell/hello/manifests/latest", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
