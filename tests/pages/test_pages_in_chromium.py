"""The landing page and the build pages, rendered by headless Chromium.

The embedded registry serves the pages (the manifest function's routes);
Chromium loads them, and the tests read the rendered DOM and a screenshot:
the PNG must show a page (many colours, not one flat background) and the
DOM the expected content. One build record is planted with markup in its
image name, error and Nix output (no pull can produce such a name, its
grammar forbids it, but records also hold text from Nix and git refs): it
must render as text, escaped, and create no element.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from metastore.records import BuildError
from metastore.sqlite import SqliteMetadataStore
from nixspec.sources import tree_signature
from tests.conftest import PKGS
from tests.support.browser import dump_dom, png_summary, screenshot
from tests.support.nixery_server import NixeryServer, start_nixery

pytestmark = [pytest.mark.nix, pytest.mark.integration]

MALICIOUS_IMAGE = '<script>alert("pwned")</script>/x:latest'
MALICIOUS_ERROR = "package <img src=x onerror=alert(1)> & friends not found"
MALICIOUS_TAIL = "</pre><script>document.title='owned'</script>"
SCREENSHOTS = Path("/tmp/nixery-page-screenshots")  # kept for people to look at


@pytest.fixture(scope="module")
def registry_with_builds(
    nix: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NixeryServer, dict[str, str]]]:
    root = tmp_path_factory.mktemp("pages")
    server = start_nixery(root / "registry", {"NIXERY_PKGS_PATH": str(PKGS)})
    try:
        ok = server.get("/v2/hello/manifests/latest")
        assert ok.status_code == 200, ok.text
        failed = server.get("/v2/nosuchpackage/manifests/latest").json()["errors"][0]
        metadata = SqliteMetadataStore(server.root / "storage" / "metadata.sqlite3")
        planted = metadata.claim_build(
            cache_key="f" * 64,
            build_id="20261129T000000-0badc0de",
            image=MALICIOUS_IMAGE,
            spec="{}",
            now=time.time(),
            lease_s=60,
            failure_ttl_s=60,
        ).build
        metadata.fail_build(
            planted.build_id,
            BuildError("MANIFEST_UNKNOWN", MALICIOUS_ERROR, {"name": "<b>bold</b>"}),
            now=time.time(),
            timings={"resolve": 0.5},
            log_tail=MALICIOUS_TAIL,
        )
        builds = {
            "ok": next(b.build_id for b in metadata.recent_builds(10) if b.image == "hello:latest"),
            "failed": failed["detail"]["build"],
            "failed_url": failed["detail"]["url"],
            "planted": planted.build_id,
        }
        yield server, builds
    finally:
        server.stop()


def keep(shot: Path) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / shot.name)


def assert_rendered(shot: Path) -> None:
    summary = png_summary(shot)
    assert (summary.width, summary.height) == (1280, 900)
    assert summary.colours > 50, summary  # text in several colours, not a blank page
    assert summary.background_share < 0.99, summary


def test_landing_page_says_how_to_pull_and_what_it_builds_from(
    registry_with_builds: tuple[NixeryServer, dict[str, str]], tmp_path: Path
) -> None:
    server, _ = registry_with_builds
    dom = dump_dom(server.url + "/")
    assert f"docker pull {server.host}/shell/git/htop" in dom
    assert "bashInteractive, coreutils, moreutils, nano" in dom  # the shell meta-package
    assert "aarch64-linux" in dom  # arm64
    assert str(PKGS) in dom
    assert tree_signature(PKGS) in dom  # the package set's current revision
    assert '<a href="/builds">' in dom
    shot = screenshot(server.url + "/", tmp_path / "home.png")
    assert_rendered(shot)
    keep(shot)


def test_builds_page_lists_successes_and_failures_with_reasons_escaped(
    registry_with_builds: tuple[NixeryServer, dict[str, str]], tmp_path: Path
) -> None:
    server, builds = registry_with_builds
    dom = dump_dom(server.url + "/builds")
    for build_id in (builds["ok"], builds["failed"], builds["planted"]):
        assert f'href="/builds/{build_id}"' in dom
    assert "succeeded" in dom and "failed" in dom
    assert "packages not found: nosuchpackage" in dom
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt;/x:latest' in dom
    assert "package &lt;img src=x onerror=alert(1)&gt; &amp; friends not found" in dom
    assert "<script" not in dom and "<img" not in dom
    failures = dump_dom(server.url + "/builds?state=failed")
    assert builds["failed"] in failures and builds["ok"] not in failures
    shot = screenshot(server.url + "/builds", tmp_path / "builds.png")
    assert_rendered(shot)
    keep(shot)


def test_a_failed_pull_links_a_page_that_says_why(
    registry_with_builds: tuple[NixeryServer, dict[str, str]], tmp_path: Path
) -> None:
    server, builds = registry_with_builds
    assert builds["failed_url"] == f"{server.url}/builds/{builds['failed']}"
    dom = dump_dom(builds["failed_url"])
    assert "MANIFEST_UNKNOWN" in dom
    assert "packages not found: nosuchpackage" in dom
    assert "resolve" in dom  # the stage it failed in, timed
    shot = screenshot(builds["failed_url"], tmp_path / "failed-build.png")
    assert_rendered(shot)
    keep(shot)


def test_a_planted_build_renders_as_text(
    registry_with_builds: tuple[NixeryServer, dict[str, str]],
) -> None:
    server, builds = registry_with_builds
    page = requests.get(f"{server.url}/builds/{builds['planted']}", timeout=30)
    assert "script-src" not in page.headers["Content-Security-Policy"]  # default-src 'none'
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    dom = dump_dom(f"{server.url}/builds/{builds['planted']}")
    assert "&lt;/pre&gt;&lt;script&gt;document.title='owned'&lt;/script&gt;" in dom
    assert "&lt;b&gt;bold&lt;/b&gt;" in dom
    assert "<script" not in dom and "<img" not in dom and "<b>" not in dom
    assert "<title>nixery: build 20261129T000000-0badc0de</title>" in dom


def test_an_unknown_build_is_a_spec_error(
    registry_with_builds: tuple[NixeryServer, dict[str, str]],
) -> None:
    server, _ = registry_with_builds
    for path in ("/builds/20990101T000000-00000000", "/builds/%3Cscript%3E"):
        answer = server.get(path)
        assert answer.status_code == 404
        assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"
