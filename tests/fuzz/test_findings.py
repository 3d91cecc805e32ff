"""Every finding of the fuzz suite, pinned as a regression test.

Each row is a request the fuzzer found answered wrongly, with the answer it
gets since the fix (status and spec code), and what was wrong before.
"""

from __future__ import annotations

import json

import pytest

from tests.fuzz.harness import Functions, check_answer
from tests.fuzz.seed import LAYER, LAYER_BYTES

HUGE = "9" * 5000  # int() refuses more than 4300 digits
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"

FINDINGS = [
    # ?n= with a superscript digit: str.isdigit() is true, int() raised (500).
    ("GET", "/v2/shell/tags/list?n=²", {}, 200, None),
    ("GET", f"/v2/shell/tags/list?n={HUGE}", {}, 200, None),
    # The builds page had the same ?n= parsing (500).
    ("GET", "/builds?n=²", {}, 200, None),
    ("GET", f"/builds?n={HUGE}", {}, 200, None),
    # A Range of 5000 digits: int() raised (500). Now ignored: the whole blob.
    ("GET", f"/v2/x/blobs/{LAYER.digest}", {"Range": f"bytes={HUGE}-"}, 200, None),
    ("GET", f"/v2/x/blobs/{LAYER.digest}", {"Range": f"bytes=0-{HUGE}"}, 200, None),
    # Arabic-Indic digits matched \d and were served as a range (206).
    ("GET", f"/v2/x/blobs/{LAYER.digest}", {"Range": "bytes=٣-"}, 200, None),
    # Reading an upload session was a 405 without the Allow header RFC 9110
    # requires; the spec's answer for an unknown upload is 404.
    ("GET", "/v2/x/blobs/uploads/", {}, 404, "BLOB_UPLOAD_UNKNOWN"),
    ("HEAD", "/v2/x/blobs/uploads/abc", {}, 404, "BLOB_UPLOAD_UNKNOWN"),
    ("PATCH", "/v2/x/blobs/uploads/abc", {}, 405, "UNSUPPORTED"),
    # q=nan parsed as a float and accepted the type it named (NaN is neither
    # more nor less than 0); a non-finite weight now accepts nothing.
    ("GET", "/v2/hello/manifests/latest", {"Accept": f"{DOCKER};q=nan"}, 404, "MANIFEST_UNKNOWN"),
    ("GET", "/v2/hello/manifests/latest", {"Accept": f"{OCI};q=inf"}, 404, "MANIFEST_UNKNOWN"),
    # A newline in the path (%0a): functions-framework's catch-all route did
    # not match and Flask answered an HTML 404.
    ("GET", "/v2/a%0ab/manifests/latest", {}, 404, "NAME_UNKNOWN"),
    ("HEAD", "/v2/a%0ab/blobs/sha256:00", {}, 404, "NAME_UNKNOWN"),
    ("GET", "/robots.txt", {}, 404, "NAME_UNKNOWN"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    FINDINGS,
    ids=[f"{m} {p[:40]} {sorted(h)}" for m, p, h, _, _ in FINDINGS],
)
def test_finding_is_fixed(
    functions: Functions,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    response = functions.request(method, path, headers)
    check_answer(method, path, response)
    assert response.status_code == status, response.get_data()[:300]
    if code is not None:
        assert response.headers["Content-Type"] == "application/json"
        if method != "HEAD":
            assert json.loads(response.get_data())["errors"][0]["code"] == code
    if status == 405:
        assert response.headers["Allow"] == "GET, HEAD"


def test_ignored_range_serves_the_whole_blob(functions: Functions) -> None:
    response = functions.request("GET", f"/v2/x/blobs/{LAYER.digest}", {"Range": "bytes=٣-"})
    assert response.status_code == 200
    assert response.get_data() == LAYER_BYTES
    assert "Content-Range" not in response.headers


def test_count_parameter_limits_tags(functions: Functions) -> None:
    assert json.loads(functions.request("GET", "/v2/shell/tags/list?n=0").get_data())["tags"] == []
    assert json.loads(functions.request("GET", "/v2/shell/tags/list?n=²").get_data())["tags"] == [
        "latest"
    ]


def test_deep_blob_paths_reaching_the_manifest_function_are_redirected(
    functions: Functions,
) -> None:
    """The URL map can spell out names of at most four components; deeper
    blob paths reach the manifest function, which sends them to the short
    name (blobs are content-addressed)."""
    digest = "sha256:" + "a" * 64
    answer = functions.manifest.get(f"/v2/a/b/c/d/e/f/blobs/{digest}")
    assert answer.status_code == 307
    assert answer.headers["Location"] == f"/v2/a/blobs/{digest}"
    bad = functions.manifest.get("/v2/a/b/c/d/e/f/blobs/sha256:zz")
    assert bad.status_code == 400
    assert json.loads(bad.data)["errors"][0]["code"] == "DIGEST_INVALID"
