"""Media types and `Accept` negotiation (`ocimodel.mediatypes`)."""

from __future__ import annotations

import pytest

from ocimodel.mediatypes import MANIFEST_TYPES, MediaType, negotiate

DOCKER = MediaType.DOCKER_MANIFEST
OCI = MediaType.OCI_MANIFEST
D = str(DOCKER)
O = str(OCI)  # noqa: E741
DOCKER_LIST = str(MediaType.DOCKER_MANIFEST_LIST)
OCI_INDEX = str(MediaType.OCI_INDEX)
PRETTYJWS = "application/vnd.docker.distribution.manifest.v1+prettyjws"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"

CASES = [
    # -- nothing said: Docker schema 2
    pytest.param([], DOCKER, id="no-accept-header"),
    pytest.param([""], DOCKER, id="empty-accept-header"),
    pytest.param(["  ,  , "], DOCKER, id="only-commas"),
    # -- wildcards only: Docker
    pytest.param(["*/*"], DOCKER, id="star-star"),
    pytest.param(["application/*"], DOCKER, id="application-star"),
    pytest.param(["*/*;q=0.1"], DOCKER, id="low-q-wildcard"),
    pytest.param(["*/*;q=0"], None, id="wildcard-q0-accepts-nothing"),
    # -- one type named
    pytest.param([D], DOCKER, id="docker-only"),
    pytest.param([O], OCI, id="oci-only"),
    pytest.param([f"{O}; charset=utf-8"], OCI, id="oci-with-parameter"),
    pytest.param([O.upper()], OCI, id="case-insensitive"),
    pytest.param([f"  {O}  "], OCI, id="whitespace"),
    pytest.param([O, OCI_INDEX], OCI, id="oci-and-index"),
    # -- both named, equal q: Docker
    pytest.param([f"{D}, {O}"], DOCKER, id="comma-list-docker-first"),
    pytest.param([f"{O}, {D}"], DOCKER, id="comma-list-oci-first"),
    pytest.param([O, D], DOCKER, id="two-lines"),
    # -- q-values
    pytest.param([f"{D};q=0.5, {O}"], OCI, id="docker-lower-q"),
    pytest.param([f"{O};q=0.5, {D};q=0.9"], DOCKER, id="oci-lower-q"),
    pytest.param([f"{O};q=0.9, {D};q=0.5"], OCI, id="oci-higher-q"),
    pytest.param([f"{D} ; Q=0.2 , {O} ; q = 0.3"], OCI, id="spaced-uppercase-q"),
    pytest.param([f"{D};q=0, {O}"], OCI, id="docker-q0"),
    pytest.param([f"{O};q=0, {D}"], DOCKER, id="oci-q0"),
    pytest.param([f"{D};q=0, {O};q=0"], None, id="both-q0"),
    pytest.param([f"*/*, {D};q=0"], OCI, id="wildcard-but-docker-refused"),
    pytest.param([f"*/*, {O};q=0"], DOCKER, id="wildcard-but-oci-refused"),
    pytest.param([f"{D};q=abc, {O};q=0.1"], OCI, id="malformed-q-accepts-nothing"),
    pytest.param([f"{D};q=7, {O};q=1"], DOCKER, id="q-above-one-is-one"),
    pytest.param([f"{O};q=-1, {D};q=0.01"], DOCKER, id="negative-q-is-zero"),
    # -- explicit over wildcard at equal q
    pytest.param([f"{O};q=0.5, */*;q=0.5"], OCI, id="oci-explicit-beats-wildcard"),
    pytest.param([f"{D};q=0.5, */*;q=0.5"], DOCKER, id="docker-explicit-beats-wildcard"),
    pytest.param([f"*/*;q=0.8, {O}"], OCI, id="oci-over-weaker-wildcard"),
    pytest.param([f"*/*, {O};q=0.8"], DOCKER, id="wildcard-stronger-than-oci"),
    # -- the more specific wildcard decides
    pytest.param(["application/*;q=0, */*"], None, id="application-star-refused"),
    pytest.param([f"application/*;q=0, {O}"], OCI, id="explicit-beats-refused-wildcard"),
    # -- several header lines: a later one never lowers an earlier grant
    pytest.param([O, f"{O};q=0", f"{D};q=0.5"], OCI, id="later-line-does-not-lower"),
    pytest.param([f"{O};q=0.2", f"{O};q=0.9", f"{D};q=0.5"], OCI, id="later-line-raises"),
    # -- nothing acceptable
    pytest.param(["application/json"], None, id="json-only"),
    pytest.param(["text/html, text/plain"], None, id="text-only"),
    pytest.param([DOCKER_LIST, OCI_INDEX], None, id="indexes-only"),
    pytest.param([SCHEMA1, PRETTYJWS], None, id="schema1-only"),
    pytest.param(["text/*"], None, id="other-major-wildcard"),
    # -- real clients
    pytest.param(
        [f"{D}, {DOCKER_LIST}, {O}, {OCI_INDEX}, */*"],
        DOCKER,
        id="containerd",
    ),
    pytest.param(
        [OCI_INDEX, O, PRETTYJWS, "application/json", DOCKER_LIST, D],
        DOCKER,
        id="docker-lines-with-application-json",
    ),
    pytest.param(
        [f"{DOCKER_LIST}, {O}, application/json, {PRETTYJWS}, {OCI_INDEX}, {D}"],
        DOCKER,
        id="docker-comma-list-with-application-json",
    ),
    pytest.param(
        [O, D, DOCKER_LIST, OCI_INDEX, SCHEMA1, PRETTYJWS],
        DOCKER,
        id="containers-image-six-lines",
    ),
    pytest.param([O, OCI_INDEX], OCI, id="oci-only-client"),
]


@pytest.mark.parametrize(("accept", "expected"), CASES)
def test_negotiate(accept: list[str], expected: MediaType | None) -> None:
    assert negotiate(accept) is expected


def test_negotiate_takes_any_iterable() -> None:
    assert negotiate(iter([O])) is OCI
    assert negotiate(line for line in (D, O)) is DOCKER


def test_manifest_types() -> None:
    assert MANIFEST_TYPES == (DOCKER, OCI)


@pytest.mark.parametrize(
    ("media_type", "value"),
    [
        pytest.param(DOCKER, "application/vnd.docker.distribution.manifest.v2+json", id="docker"),
        pytest.param(
            MediaType.DOCKER_MANIFEST_LIST,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            id="docker-list",
        ),
        pytest.param(
            MediaType.DOCKER_CONFIG, "application/vnd.docker.container.image.v1+json", id="dcfg"
        ),
        pytest.param(
            MediaType.DOCKER_LAYER_GZIP,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            id="docker-layer",
        ),
        pytest.param(OCI, "application/vnd.oci.image.manifest.v1+json", id="oci"),
        pytest.param(MediaType.OCI_INDEX, "application/vnd.oci.image.index.v1+json", id="index"),
        pytest.param(MediaType.OCI_CONFIG, "application/vnd.oci.image.config.v1+json", id="ocfg"),
        pytest.param(
            MediaType.OCI_LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar+gzip", id="oci-layer"
        ),
    ],
)
def test_media_type_strings(media_type: MediaType, value: str) -> None:
    assert str(media_type) == value
    assert media_type == value
