"""Content digests (`ocimodel.digest`)."""

from __future__ import annotations

import hashlib

import pytest

from ocimodel.digest import (
    MAX_DIGEST_LENGTH,
    hex_part,
    looks_like_digest,
    parse_digest,
    sha256_digest,
)
from ocimodel.errors import ErrorCode, RegistryError

HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of b""


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        pytest.param(b"", f"sha256:{HEX}", id="empty"),
        pytest.param(b"abc", "sha256:" + hashlib.sha256(b"abc").hexdigest(), id="abc"),
    ],
)
def test_sha256_digest(data: bytes, digest: str) -> None:
    assert sha256_digest(data) == digest


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"sha256:{HEX}", id="sha256"),
        pytest.param("sha512:" + "a" * 128, id="sha512"),
        pytest.param("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", id="plus"),
        pytest.param("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", id="b64u"),
        pytest.param("a.b_c-d:X=", id="separators"),
        pytest.param("blake3:" + "f" * 64, id="blake3"),
    ],
)
def test_parse_digest_accepts_well_formed(value: str) -> None:
    assert parse_digest(value) == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("", "invalid digest format", id="empty"),
        pytest.param("latest", "invalid digest format", id="tag"),
        pytest.param(HEX, "invalid digest format", id="no-algorithm"),
        pytest.param(f"SHA256:{HEX}", "invalid digest format", id="uppercase-algorithm"),
        pytest.param("sha256:", "invalid digest format", id="empty-encoded"),
        pytest.param(f":{HEX}", "invalid digest format", id="empty-algorithm"),
        pytest.param(f"sha256:{HEX}/x", "invalid digest format", id="slash"),
        pytest.param("sha256:ab cd", "invalid digest format", id="space"),
        pytest.param("sha256:" + "a" * 300, "invalid digest format", id="over-length"),
        pytest.param("sha-:abc", "invalid digest format", id="dangling-separator"),
        pytest.param(f"sha256:{HEX.upper()}", "64 lowercase hex", id="uppercase-hex"),
        pytest.param(f"sha256:{HEX[:-1]}", "64 lowercase hex", id="63-hex"),
        pytest.param(f"sha256:{HEX}0", "64 lowercase hex", id="65-hex"),
        pytest.param("sha256:" + "g" * 64, "64 lowercase hex", id="not-hex"),
    ],
)
def test_parse_digest_rejects_malformed(value: str, fragment: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_digest(value)
    assert info.value.code is ErrorCode.DIGEST_INVALID
    assert info.value.status == 400
    assert fragment in info.value.message
    assert len(str(info.value.detail)) <= 80


def test_length_limit_boundary() -> None:
    at_limit = "x:" + "a" * (MAX_DIGEST_LENGTH - 2)
    assert parse_digest(at_limit) == at_limit
    with pytest.raises(RegistryError):
        parse_digest(at_limit + "a")


@pytest.mark.parametrize(
    ("reference", "is_digest"),
    [
        pytest.param("latest", False, id="tag"),
        pytest.param("v1.2.3", False, id="version-tag"),
        pytest.param(f"sha256:{HEX}", True, id="digest"),
        pytest.param("junk:", True, id="malformed-digest-is-still-a-digest"),
    ],
)
def test_looks_like_digest(reference: str, is_digest: bool) -> None:
    assert looks_like_digest(reference) is is_digest


def test_hex_part() -> None:
    assert hex_part(f"sha256:{HEX}") == HEX
