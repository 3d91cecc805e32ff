"""Single byte ranges for blob GETs (`registry.blobs.parse_range`)."""

from __future__ import annotations

import pytest

from ocimodel.errors import ErrorCode, RegistryError
from registry.blobs import parse_range

SIZE = 100


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        pytest.param("bytes=0-9", SIZE, (0, 10), id="first-ten"),
        pytest.param("bytes=0-0", SIZE, (0, 1), id="first-byte"),
        pytest.param("bytes=99-99", SIZE, (99, 100), id="last-byte"),
        pytest.param("bytes=0-99", SIZE, (0, 100), id="whole"),
        pytest.param("bytes=10-", SIZE, (10, 100), id="open-ended"),
        pytest.param("bytes=0-", SIZE, (0, 100), id="open-from-zero"),
        pytest.param("bytes=90-200", SIZE, (90, 100), id="end-clamped"),
        pytest.param("bytes=-10", SIZE, (90, 100), id="suffix"),
        pytest.param("bytes=-100", SIZE, (0, 100), id="suffix-whole"),
        pytest.param("bytes=-500", SIZE, (0, 100), id="suffix-longer-than-blob"),
        pytest.param("  bytes = 5 - 6 ", SIZE, (5, 7), id="whitespace"),
        pytest.param("bytes=007-008", SIZE, (7, 9), id="leading-zeros"),
        pytest.param("bytes=0-0", 1, (0, 1), id="one-byte-blob"),
    ],
)
def test_satisfiable_ranges(header: str, size: int, expected: tuple[int, int]) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("bytes=", id="no-range"),
        pytest.param("bytes=-", id="dash-only"),
        pytest.param("bytes=5-2", id="last-before-first"),
        pytest.param("bytes=0-1,5-6", id="multi-range"),
        pytest.param("bytes=0-1, 5-6", id="multi-range-spaced"),
        pytest.param("items=0-9", id="other-unit"),
        pytest.param("bytes=a-b", id="not-numbers"),
        pytest.param("bytes=1.5-2", id="fraction"),
        pytest.param("bytes 0-9", id="no-equals"),
        pytest.param("0-9", id="no-unit"),
    ],
)
def test_ignored_headers_give_the_whole_blob(header: str) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        pytest.param("bytes=100-", SIZE, id="start-at-size"),
        pytest.param("bytes=150-160", SIZE, id="start-beyond"),
        pytest.param("bytes=100-100", SIZE, id="single-byte-beyond"),
        pytest.param("bytes=-0", SIZE, id="empty-suffix"),
        pytest.param("bytes=0-", 0, id="empty-blob"),
    ],
)
def test_unsatisfiable_ranges_are_416(header: str, size: int) -> None:
    with pytest.raises(RegistryError) as info:
        parse_range(header, size)
    error = info.value
    assert error.status == 416
    assert error.code is ErrorCode.SIZE_INVALID
    assert error.headers == {"Content-Range": f"bytes */{size}"}
    assert f"{size} bytes" in error.message


@pytest.mark.parametrize("size", [1, 7, 100, 4096])
def test_every_answer_lies_within_the_blob(size: int) -> None:
    headers = [f"bytes={a}-{b}" for a in range(0, size + 3, max(size // 5, 1)) for b in (a, a + 3)]
    headers += [f"bytes=-{n}" for n in (1, size, size + 1)]
    for header in headers:
        try:
            wanted = parse_range(header, size)
        except RegistryError:
            continue
        assert wanted is not None, header
        start, end = wanted
        assert 0 <= start < end <= size, header
