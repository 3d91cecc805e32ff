"""The build spec (`nixspec.spec`): JSON round trips and the cache key."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from nixspec.names import Arch, parse_name
from nixspec.spec import ImageSpec, PackageSource, SourceKind

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
CHANNEL = PackageSource(SourceKind.CHANNEL, "nixos-unstable", COMMIT)


def spec_for(name: str, tag: str = "latest", source: PackageSource = CHANNEL) -> ImageSpec:
    parsed = parse_name(name)
    return ImageSpec(name, tag, parsed.packages, parsed.arch, source)


BASE = spec_for("hello")

SPECS = [
    pytest.param(BASE, id="channel"),
    pytest.param(spec_for("shell/arm64"), id="arm64-shell"),
    pytest.param(
        spec_for("git", "v1", PackageSource(SourceKind.GIT, "https://example.org/p.git", COMMIT)),
        id="git",
    ),
    pytest.param(
        spec_for("hello", "x", PackageSource(SourceKind.PATH, "/srv/pkgs", "ab" * 32)),
        id="path",
    ),
    pytest.param(
        ImageSpec("odd", "t", ('with"quote', "ünïcode"), Arch.AMD64, CHANNEL),
        id="awkward-strings",
    ),
]


@pytest.mark.parametrize("spec", SPECS)
def test_json_round_trip_is_exact(spec: ImageSpec) -> None:
    text = spec.to_json()
    again = ImageSpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    assert again.cache_key == spec.cache_key


def test_to_dict_shape() -> None:
    assert spec_for("arm64/hello").to_dict() == {
        "name": "arm64/hello",
        "tag": "latest",
        "packages": ["cacert", "hello", "iana-etc"],
        "arch": "ARM64",
        "source": {"kind": "channel", "location": "nixos-unstable", "revision": COMMIT},
    }


def test_to_json_is_canonical() -> None:
    text = BASE.to_json()
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def test_cache_key_is_sha256_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", BASE.cache_key)


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(dataclasses.replace(BASE, arch=Arch.ARM64), id="arch"),
        pytest.param(dataclasses.replace(BASE, packages=("cacert", "hello")), id="packages"),
        pytest.param(
            dataclasses.replace(BASE, source=dataclasses.replace(CHANNEL, revision=OTHER_COMMIT)),
            id="revision",
        ),
        pytest.param(
            dataclasses.replace(BASE, source=dataclasses.replace(CHANNEL, location="nixos-24.05")),
            id="location",
        ),
        pytest.param(
            dataclasses.replace(BASE, source=dataclasses.replace(CHANNEL, kind=SourceKind.GIT)),
            id="source-kind",
        ),
        pytest.param(spec_for("shell/hello"), id="shell"),
    ],
)
def test_cache_key_changes_with_every_input(other: ImageSpec) -> None:
    assert other.cache_key != BASE.cache_key


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(("ab", "c"), ("a", "bc"), id="join-boundary"),
        pytest.param(("a", "b"), ("a\u0000b",), id="nul"),
        pytest.param(("a,b",), ("a", "b"), id="comma"),
        pytest.param(("a", ""), ("a",), id="empty-member"),
    ],
)
def test_cache_key_has_no_separator_collisions(
    first: tuple[str, ...], second: tuple[str, ...]
) -> None:
    # Upstream's sha1(join(packages, "") + tag) collides on the first case.
    a = dataclasses.replace(BASE, packages=first)
    b = dataclasses.replace(BASE, packages=second)
    assert a.cache_key != b.cache_key


def test_upstream_key_ignored_architecture_ours_does_not() -> None:
    assert spec_for("hello").cache_key != spec_for("hello/arm64").cache_key
    assert spec_for("arm64/hello").cache_key == spec_for("hello/arm64").cache_key


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(spec_for("shell/hello"), spec_for("hello/shell"), id="name-order"),
        pytest.param(spec_for("shell/bashinteractive"), spec_for("shell"), id="dedup"),
        pytest.param(spec_for("hello", "latest"), spec_for("hello", "other"), id="tag"),
        pytest.param(spec_for("arm64/hello"), spec_for("hello/arm64"), id="arm64-position"),
    ],
)
def test_cache_key_ignores_name_and_tag(first: ImageSpec, second: ImageSpec) -> None:
    assert first.name != second.name or first.tag != second.tag
    assert first.cache_key == second.cache_key


@pytest.mark.parametrize(
    ("packages", "runs_shell"),
    [
        pytest.param(("bashInteractive", "cacert"), True, id="exact"),
        pytest.param(("bashinteractive",), True, id="lowercase"),
        pytest.param(("bash", "cacert"), False, id="plain-bash"),
        pytest.param((), False, id="none"),
    ],
)
def test_runs_shell(packages: tuple[str, ...], runs_shell: bool) -> None:
    assert dataclasses.replace(BASE, packages=packages).runs_shell is runs_shell


def test_shell_meta_package_runs_shell() -> None:
    assert spec_for("shell").runs_shell
    assert not spec_for("hello").runs_shell


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        pytest.param(SourceKind.PATH, "path", id="path"),
        pytest.param(SourceKind.CHANNEL, "channel", id="channel"),
        pytest.param(SourceKind.GIT, "git", id="git"),
    ],
)
def test_source_kind_values(kind: SourceKind, value: str) -> None:
    assert str(kind) == value
    assert SourceKind(value) is kind


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"arch": "SPARC"}, id="unknown-arch"),
        pytest.param({"source": {"kind": "svn", "location": "x", "revision": "y"}}, id="kind"),
    ],
)
def test_from_dict_rejects_unknown_values(broken: dict[str, object]) -> None:
    data = {**BASE.to_dict(), **broken}
    with pytest.raises((KeyError, ValueError)):
        ImageSpec.from_dict(data)
