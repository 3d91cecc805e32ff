"""The registry's URL space (`registry.routes`)."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from registry.routes import Kind, Route, parse

DIGEST = "sha256:" + "a" * 64

CASES = [
    pytest.param("/v2/", Route(Kind.BASE), id="base"),
    pytest.param("/v2", Route(Kind.BASE), id="base-no-slash"),
    pytest.param(
        "/v2/hello/manifests/latest", Route(Kind.MANIFEST, "hello", "latest"), id="manifest-tag"
    ),
    pytest.param(
        f"/v2/hello/manifests/{DIGEST}", Route(Kind.MANIFEST, "hello", DIGEST), id="by-digest"
    ),
    pytest.param(
        "/v2/shell/git/htop/manifests/v1.0",
        Route(Kind.MANIFEST, "shell/git/htop", "v1.0"),
        id="manifest-many-components",
    ),
    pytest.param(
        "/v2/manifests/manifests/latest",
        Route(Kind.MANIFEST, "manifests", "latest"),
        id="image-named-manifests",
    ),
    pytest.param(
        "/v2/a/manifests/b/manifests/latest",
        Route(Kind.MANIFEST, "a/manifests/b", "latest"),
        id="last-manifests-separates",
    ),
    pytest.param(
        "/v2/blobs/manifests/latest", Route(Kind.MANIFEST, "blobs", "latest"), id="named-blobs"
    ),
    pytest.param(f"/v2/hello/blobs/{DIGEST}", Route(Kind.BLOB, "hello", DIGEST), id="blob"),
    pytest.param(
        f"/v2/shell/htop/blobs/{DIGEST}", Route(Kind.BLOB, "shell/htop", DIGEST), id="blob-deep"
    ),
    pytest.param(
        f"/v2/a/manifests/x/blobs/{DIGEST}",
        Route(Kind.BLOB, "a/manifests/x", DIGEST),
        id="last-blobs-separates",
    ),
    pytest.param(
        f"/v2/uploads/blobs/{DIGEST}", Route(Kind.BLOB, "uploads", DIGEST), id="named-uploads"
    ),
    pytest.param("/v2/hello/blobs/uploads/", Route(Kind.UPLOAD, "hello"), id="upload-start"),
    pytest.param("/v2/hello/blobs/uploads", Route(Kind.UPLOAD, "hello"), id="upload-no-slash"),
    pytest.param("/v2/a/b/blobs/uploads/5f0c-uuid", Route(Kind.UPLOAD, "a/b"), id="upload-session"),
    pytest.param("/v2/hello/tags/list", Route(Kind.TAGS, "hello"), id="tags"),
    pytest.param("/v2/shell/htop/tags/list", Route(Kind.TAGS, "shell/htop"), id="tags-deep"),
    pytest.param("/", Route(Kind.HOME), id="root"),
    pytest.param("/builds", Route(Kind.BUILDS), id="builds"),
    pytest.param("/builds/", Route(Kind.BUILDS), id="builds-slash"),
    pytest.param(
        "/builds/20261129T064215-3f9a1c2e",
        Route(Kind.BUILD, reference="20261129T064215-3f9a1c2e"),
        id="build",
    ),
    pytest.param("/builds/a/b", Route(Kind.UNKNOWN), id="build-two-segments"),
    pytest.param("/v2/builds", Route(Kind.UNKNOWN), id="builds-under-v2"),
    pytest.param("/v2/_catalog", Route(Kind.UNKNOWN), id="catalog"),
    pytest.param("/v1/hello/manifests/latest", Route(Kind.UNKNOWN), id="v1"),
    pytest.param("/v2/hello", Route(Kind.UNKNOWN), id="name-only"),
    pytest.param("/v2/hello/manifests/latest/extra", Route(Kind.UNKNOWN), id="trailing-part"),
    pytest.param("/v2//manifests/latest", Route(Kind.UNKNOWN), id="empty-name"),
    pytest.param("/v2/hello/tags/list/more", Route(Kind.UNKNOWN), id="tags-extra"),
    pytest.param("/v2/hello/referrers/x", Route(Kind.UNKNOWN), id="referrers"),
    pytest.param("/v2/hello/blobs/uploads/a/b", Route(Kind.UNKNOWN), id="upload-too-deep"),
    pytest.param("/V2/hello/manifests/latest", Route(Kind.UNKNOWN), id="uppercase-prefix"),
]


@pytest.mark.parametrize(("path", "route"), CASES)
def test_parse(path: str, route: Route) -> None:
    assert parse(path) == route


@pytest.mark.parametrize(
    ("path", "query", "route"),
    [
        pytest.param(
            "/v2/hello/manifests/latest",
            "ns=docker.io",
            Route(Kind.MANIFEST, "hello", "latest"),
            id="containerd-ns-manifest",
        ),
        pytest.param(
            f"/v2/hello/blobs/{DIGEST}",
            "ns=ghcr.io&x=1",
            Route(Kind.BLOB, "hello", DIGEST),
            id="containerd-ns-blob",
        ),
        pytest.param("/v2/", "ns=docker.io", Route(Kind.BASE), id="base-with-query"),
        pytest.param(
            "/v2/hello/tags/list", "n=10&last=a", Route(Kind.TAGS, "hello"), id="tags-paging"
        ),
    ],
)
def test_query_strings_never_change_the_route(path: str, query: str, route: Route) -> None:
    request = Request(EnvironBuilder(path=path, query_string=query).get_environ())
    assert parse(request.path) == route
