"""The error-code registry and its renderer (`ocimodel.errors`)."""

from __future__ import annotations

import json

import pytest

from ocimodel.errors import ErrorCode, RegistryError, render

# distribution/distribution's statuses, plus our UNAVAILABLE/UNKNOWN.
STATUSES = [
    ("BLOB_UNKNOWN", 404),
    ("BLOB_UPLOAD_INVALID", 400),
    ("BLOB_UPLOAD_UNKNOWN", 404),
    ("DIGEST_INVALID", 400),
    ("MANIFEST_BLOB_UNKNOWN", 404),
    ("MANIFEST_INVALID", 400),
    ("MANIFEST_UNKNOWN", 404),
    ("NAME_INVALID", 400),
    ("NAME_UNKNOWN", 404),
    ("SIZE_INVALID", 400),
    ("UNAUTHORIZED", 401),
    ("DENIED", 403),
    ("UNSUPPORTED", 405),
    ("TOOMANYREQUESTS", 429),
    ("UNKNOWN", 500),
    ("UNAVAILABLE", 503),
]


@pytest.mark.parametrize(("name", "status"), [pytest.param(n, s, id=n) for n, s in STATUSES])
def test_each_code_has_its_spec_status_and_a_message(name: str, status: int) -> None:
    code = ErrorCode[name]
    assert code.status == status
    assert code.default_message


def test_the_registry_holds_exactly_the_spec_codes() -> None:
    assert {c.name for c in ErrorCode} == {n for n, _ in STATUSES}


@pytest.mark.parametrize(
    ("error", "status", "entry", "extra_headers"),
    [
        pytest.param(
            RegistryError(ErrorCode.MANIFEST_UNKNOWN, "hullo: not found", detail={"name": "x"}),
            404,
            {"code": "MANIFEST_UNKNOWN", "message": "hullo: not found", "detail": {"name": "x"}},
            {},
            id="message-and-detail",
        ),
        pytest.param(
            RegistryError(ErrorCode.BLOB_UNKNOWN),
            404,
            {"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"},
            {},
            id="default-message-no-detail",
        ),
        pytest.param(
            RegistryError(ErrorCode.DIGEST_INVALID, detail=""),
            400,
            {
                "code": "DIGEST_INVALID",
                "message": "provided digest did not match uploaded content",
                "detail": "",
            },
            {},
            id="falsy-detail-kept",
        ),
        pytest.param(
            RegistryError(ErrorCode.UNSUPPORTED, "read-only", headers={"Allow": "GET, HEAD"}),
            405,
            {"code": "UNSUPPORTED", "message": "read-only"},
            {"Allow": "GET, HEAD"},
            id="allow-header",
        ),
        pytest.param(
            RegistryError(ErrorCode.TOOMANYREQUESTS, headers={"Retry-After": "5"}),
            429,
            {"code": "TOOMANYREQUESTS", "message": "too many requests"},
            {"Retry-After": "5"},
            id="retry-after",
        ),
        pytest.param(
            RegistryError(
                ErrorCode.SIZE_INVALID,
                "range not satisfiable",
                headers={"Content-Range": "bytes */10"},
                status_override=416,
            ),
            416,
            {"code": "SIZE_INVALID", "message": "range not satisfiable"},
            {"Content-Range": "bytes */10"},
            id="status-override",
        ),
        pytest.param(
            RegistryError(ErrorCode.UNKNOWN, "ünïcode ✓"),
            500,
            {"code": "UNKNOWN", "message": "ünïcode ✓"},
            {},
            id="unicode",
        ),
    ],
)
def test_render(
    error: RegistryError, status: int, entry: dict[str, object], extra_headers: dict[str, str]
) -> None:
    got_status, headers, body = render(error)
    assert got_status == status == error.status
    assert json.loads(body) == {"errors": [entry]}
    assert headers == {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **extra_headers,
    }


def test_exception_text_is_the_message_or_the_default() -> None:
    assert str(RegistryError(ErrorCode.NAME_INVALID, "bad name")) == "bad name"
    assert str(RegistryError(ErrorCode.NAME_INVALID)) == "invalid repository name"


def test_registry_error_is_raisable_and_catchable() -> None:
    with pytest.raises(RegistryError) as info:
        raise RegistryError(ErrorCode.DENIED)
    assert info.value.status == 403
    assert isinstance(info.value, Exception)


def test_headers_are_not_shared_between_errors() -> None:
    a = RegistryError(ErrorCode.UNKNOWN)
    a.headers["X"] = "1"
    assert RegistryError(ErrorCode.UNKNOWN).headers == {}
