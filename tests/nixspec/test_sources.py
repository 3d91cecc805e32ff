"""Pinning the configured package source (`nixspec.sources`).

The network boundaries (`fetch`, `ls_remote`) and the clock are injected;
`tree_signature` runs on real temporary directories.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nixspec.sources import (
    COMMIT,
    ConfiguredSource,
    SourceResolver,
    git_ls_remote,
    tree_signature,
)
from nixspec.spec import PackageSource, SourceKind
from ocimodel.errors import ErrorCode, RegistryError

C1 = "1111111111111111111111111111111111111111"
C2 = "2222222222222222222222222222222222222222"
REPO = "https://example.org/pkgs.git"


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeFetch:
    """Answers channel URLs from a table; records every call."""

    answers: dict[str, str | Exception]
    calls: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, url: str, timeout_s: float) -> str:
        self.calls.append((url, timeout_s))
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


@dataclass
class FakeLsRemote:
    """Answers refs from a table; records every call."""

    refs: dict[str, str | Exception]
    calls: list[tuple[str, str, float]] = field(default_factory=list)

    def __call__(self, url: str, ref: str, timeout_s: float) -> str:
        self.calls.append((url, ref, timeout_s))
        answer = self.refs.get(ref, LookupError(ref))
        if isinstance(answer, Exception):
            raise answer
        return answer


def never_fetch(url: str, timeout_s: float) -> str:
    raise AssertionError(f"unexpected fetch of {url}")


def never_ls_remote(url: str, ref: str, timeout_s: float) -> str:
    raise AssertionError(f"unexpected ls-remote of {ref}")


def git_resolver(
    ls_remote: Callable[[str, str, float], str], clock: Clock | None = None, ttl_s: float = 10.0
) -> SourceResolver:
    return SourceResolver(
        ConfiguredSource(SourceKind.GIT, REPO),
        ttl_s=ttl_s,
        fetch=never_fetch,
        ls_remote=ls_remote,
        clock=clock or Clock(),
    )


def channel_resolver(
    location: str,
    fetch: Callable[[str, float], str],
    clock: Clock | None = None,
    channel_base: str = "https://channels.example.org",
    ttl_s: float = 10.0,
) -> SourceResolver:
    return SourceResolver(
        ConfiguredSource(SourceKind.CHANNEL, location),
        ttl_s=ttl_s,
        channel_base=channel_base,
        fetch=fetch,
        ls_remote=never_ls_remote,
        clock=clock or Clock(),
    )


# -- git ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "asked_ref", "revision"),
    [
        pytest.param("latest", "HEAD", C1, id="latest-is-default-branch"),
        pytest.param("main", "main", C2, id="branch"),
        pytest.param("v1.0", "v1.0", C2, id="tag"),
    ],
)
def test_git_refs_are_resolved_with_ls_remote(tag: str, asked_ref: str, revision: str) -> None:
    ls_remote = FakeLsRemote({"HEAD": C1, "main": C2, "v1.0": C2})
    pinned = git_resolver(ls_remote).resolve(tag)
    assert pinned == PackageSource(SourceKind.GIT, REPO, revision)
    assert ls_remote.calls == [(REPO, asked_ref, 30.0)]


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param(C1, id="commit"),
        pytest.param("0123456789abcdef0123456789abcdef01234567", id="hex-commit"),
    ],
)
def test_git_commit_tag_is_used_without_network(tag: str) -> None:
    pinned = git_resolver(never_ls_remote).resolve(tag)
    assert pinned == PackageSource(SourceKind.GIT, REPO, tag)


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("0123456789ABCDEF0123456789ABCDEF01234567", id="uppercase-hex"),
        pytest.param("0123456789abcdef0123456789abcdef0123456", id="39-hex"),
        pytest.param("0123456789abcdef0123456789abcdef012345678", id="41-hex"),
    ],
)
def test_almost_commits_are_refs(tag: str) -> None:
    ls_remote = FakeLsRemote({tag: C1})
    assert git_resolver(ls_remote).resolve(tag).revision == C1
    assert [ref for _, ref, _ in ls_remote.calls] == [tag]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        pytest.param(LookupError("no such ref"), ErrorCode.MANIFEST_UNKNOWN, id="unknown-ref"),
        pytest.param(OSError("no git"), ErrorCode.UNAVAILABLE, id="os-error"),
        pytest.param(
            subprocess.CalledProcessError(128, ["git"]), ErrorCode.UNAVAILABLE, id="git-failed"
        ),
        pytest.param(
            subprocess.TimeoutExpired(["git"], 30.0), ErrorCode.UNAVAILABLE, id="git-timeout"
        ),
    ],
)
def test_git_resolution_failures(failure: Exception, code: ErrorCode) -> None:
    with pytest.raises(RegistryError) as info:
        git_resolver(FakeLsRemote({"main": failure})).resolve("main")
    assert info.value.code is code
    assert "main" in info.value.message


def test_git_resolutions_are_cached_per_tag_for_the_ttl() -> None:
    clock = Clock()
    ls_remote = FakeLsRemote({"HEAD": C1, "dev": C2})
    resolver = git_resolver(ls_remote, clock, ttl_s=10.0)
    assert resolver.resolve("latest").revision == C1
    assert resolver.resolve("dev").revision == C2
    clock.now += 9.9
    ls_remote.refs["HEAD"] = C2
    assert resolver.resolve("latest").revision == C1  # cached
    assert resolver.resolve("dev").revision == C2
    assert [ref for _, ref, _ in ls_remote.calls] == ["HEAD", "dev"]
    clock.now += 0.1  # exactly the TTL: expired
    assert resolver.resolve("latest").revision == C2
    assert [ref for _, ref, _ in ls_remote.calls] == ["HEAD", "dev", "HEAD"]


def test_git_failures_are_not_cached() -> None:
    ls_remote = FakeLsRemote({"main": OSError("down")})
    resolver = git_resolver(ls_remote)
    with pytest.raises(RegistryError):
        resolver.resolve("main")
    ls_remote.refs["main"] = C1
    assert resolver.resolve("main").revision == C1
    assert len(ls_remote.calls) == 2


# -- channels -----------------------------------------------------------------


def test_channel_commit_is_used_without_network() -> None:
    resolver = channel_resolver(C1, never_fetch)
    assert resolver.resolve("latest") == PackageSource(SourceKind.CHANNEL, C1, C1)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        pytest.param(
            "https://channels.example.org",
            "https://channels.example.org/nixos-unstable/git-revision",
            id="plain-base",
        ),
        pytest.param(
            "https://channels.example.org/",
            "https://channels.example.org/nixos-unstable/git-revision",
            id="trailing-slash",
        ),
    ],
)
def test_channel_name_is_resolved_through_git_revision(base: str, url: str) -> None:
    fetch = FakeFetch({url: C2})
    pinned = channel_resolver("nixos-unstable", fetch, channel_base=base).resolve("latest")
    assert pinned == PackageSource(SourceKind.CHANNEL, "nixos-unstable", C2)
    assert fetch.calls == [(url, 10.0)]


def test_channel_ignores_the_tag_and_caches_for_the_ttl() -> None:
    clock = Clock()
    url = "https://channels.example.org/nixos-24.05/git-revision"
    fetch = FakeFetch({url: C1})
    resolver = channel_resolver("nixos-24.05", fetch, clock, ttl_s=5.0)
    assert resolver.resolve("latest").revision == C1
    assert resolver.resolve("anything").revision == C1
    assert len(fetch.calls) == 1
    fetch.answers[url] = C2  # the channel moves
    clock.now += 4.0
    assert resolver.resolve("latest").revision == C1
    clock.now += 1.0
    assert resolver.resolve("latest").revision == C2
    assert len(fetch.calls) == 2


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        pytest.param(OSError("connection refused"), "cannot resolve channel", id="network"),
        pytest.param("<html>404</html>", "not a commit", id="not-a-commit"),
        pytest.param("", "not a commit", id="empty"),
        pytest.param("ABCDEF" * 6 + "ABCD", "not a commit", id="uppercase"),
    ],
)
def test_channel_resolution_failures_are_unavailable(
    answer: str | Exception, fragment: str
) -> None:
    fetch = FakeFetch({"https://channels.example.org/broken/git-revision": answer})
    with pytest.raises(RegistryError) as info:
        channel_resolver("broken", fetch).resolve("latest")
    assert info.value.code is ErrorCode.UNAVAILABLE
    assert info.value.status == 503
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("value", "is_commit"),
    [
        pytest.param(C1, True, id="commit"),
        pytest.param(C1[:-1], False, id="short"),
        pytest.param(C1.upper().replace("1", "A"), False, id="uppercase"),
        pytest.param("g" * 40, False, id="not-hex"),
        pytest.param("nixos-unstable", False, id="channel-name"),
    ],
)
def test_commit_pattern(value: str, is_commit: bool) -> None:
    assert (COMMIT.fullmatch(value) is not None) is is_commit


# -- paths ----------------------------------------------------------------------


def make_tree(root: Path) -> Path:
    (root / "pkgs" / "hello").mkdir(parents=True)
    (root / "default.nix").write_text("{ ... }: { }\n")
    (root / "pkgs" / "hello" / "default.nix").write_text("hello\n")
    return root


def test_tree_signature_is_stable_for_an_unchanged_tree(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    first = tree_signature(root)
    assert tree_signature(root) == first
    assert len(first) == 64


def _write(root: Path) -> None:
    (root / "pkgs" / "hello" / "default.nix").write_text("goodbye\n")


def _touch(root: Path) -> None:
    target = root / "pkgs" / "hello" / "default.nix"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _add(root: Path) -> None:
    (root / "pkgs" / "new.nix").write_text("x")


def _remove(root: Path) -> None:
    (root / "pkgs" / "hello" / "default.nix").unlink()


def _rename(root: Path) -> None:
    (root / "pkgs" / "hello").rename(root / "pkgs" / "hullo")


def _chmod(root: Path) -> None:
    (root / "default.nix").chmod(0o755)


def _symlink_retarget(root: Path) -> None:
    (root / "link").unlink()
    (root / "link").symlink_to("pkgs/hello/other")


CHANGES: list[tuple[str, Callable[[Path], None]]] = [
    ("content", _write),
    ("mtime", _touch),
    ("new-file", _add),
    ("removed-file", _remove),
    ("renamed-dir", _rename),
    ("mode", _chmod),
    ("symlink-target", _symlink_retarget),
]


@pytest.mark.parametrize("change", [pytest.param(c, id=i) for i, c in CHANGES])
def test_tree_signature_changes_when_the_tree_changes(
    tmp_path: Path, change: Callable[[Path], None]
) -> None:
    root = make_tree(tmp_path)
    (root / "link").symlink_to("pkgs/hello/default.nix")
    before = tree_signature(root)
    change(root)
    assert tree_signature(root) != before


@pytest.mark.parametrize("ignored", [".git", "__pycache__", "result"])
def test_tree_signature_ignores_vcs_and_build_directories(tmp_path: Path, ignored: str) -> None:
    root = make_tree(tmp_path)
    before = tree_signature(root)
    for where in (root, root / "pkgs"):
        (where / ignored / "objects").mkdir(parents=True)
        (where / ignored / "objects" / "blob").write_text("noise")
    middle = tree_signature(root)
    (root / ignored / "objects" / "blob").write_text("more noise")
    assert middle == before
    assert tree_signature(root) == before


def test_tree_signature_does_not_depend_on_the_root_location(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a")
    b = tmp_path / "b"
    a.rename(b)
    renamed = tree_signature(b)
    b.rename(a)
    assert renamed == tree_signature(a)


def test_tree_signature_changes_when_a_directory_symlink_is_retargeted(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "set")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "f").write_text("1")
    (tmp_path / "v2" / "f").write_text("22")
    (root / "nixpkgs").symlink_to(tmp_path / "v1")
    before = tree_signature(root)
    (root / "nixpkgs").unlink()
    (root / "nixpkgs").symlink_to(tmp_path / "v2")
    assert tree_signature(root) != before


def test_path_source_is_pinned_to_the_tree_signature_and_cached(tmp_path: Path) -> None:
    root = make_tree(tmp_path)
    clock = Clock()
    resolver = SourceResolver(
        ConfiguredSource(SourceKind.PATH, str(root)),
        ttl_s=10.0,
        fetch=never_fetch,
        ls_remote=never_ls_remote,
        clock=clock,
    )
    first = resolver.resolve("latest")
    assert first == PackageSource(SourceKind.PATH, str(root), tree_signature(root))
    assert resolver.resolve("some-other-tag") == first  # the tag is ignored
    _write(root)
    assert resolver.resolve("latest") == first  # within the TTL: cached
    clock.now += 10.0
    second = resolver.resolve("latest")
    assert second.revision == tree_signature(root)
    assert second.revision != first.revision


# -- git ls-remote on a real local repository (no network) ----------------------


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    ).stdout.strip()


@pytest.fixture(scope="module")
def git_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """main (2 commits), a branch feature/main, a lightweight and an annotated tag."""
    repo = tmp_path_factory.mktemp("repo")
    _git(repo, "init", "-q")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    first = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "light")
    _git(repo, "tag", "-a", "annotated", "-m", "release")
    _git(repo, "branch", "feature/main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    second = _git(repo, "rev-parse", "HEAD")
    return repo, {"first": first, "second": second}


@pytest.mark.parametrize(
    ("ref", "commit"),
    [
        pytest.param("HEAD", "second", id="head"),
        pytest.param("main", "second", id="branch-not-feature-slash-main"),
        pytest.param("refs/heads/main", "second", id="full-ref"),
        pytest.param("feature/main", "first", id="branch-with-slash"),
        pytest.param("light", "first", id="lightweight-tag"),
        pytest.param(
            "annotated",
            "first",
            id="annotated-tag",
        ),
    ],
)
def test_git_ls_remote_answers_the_commit(
    git_repo: tuple[Path, dict[str, str]], ref: str, commit: str
) -> None:
    repo, commits = git_repo
    assert git_ls_remote(str(repo), ref, 30.0) == commits[commit]


def test_git_ls_remote_unknown_ref(git_repo: tuple[Path, dict[str, str]]) -> None:
    repo, _ = git_repo
    with pytest.raises(LookupError):
        git_ls_remote(str(repo), "no-such-branch", 30.0)


def test_git_ls_remote_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError):
        git_ls_remote(str(tmp_path / "nothing-here"), "HEAD", 30.0)
