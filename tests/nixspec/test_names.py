"""Image names to package lists (`nixspec.names`): Nixery's rules, its flaws fixed."""

from __future__ import annotations

import pytest

from nixspec.names import (
    ALWAYS_INCLUDED,
    DEFAULT_MAX_NAME_LENGTH,
    SHELL_PACKAGES,
    Arch,
    normalise_packages,
    parse_name,
    validate_name,
    validate_tag,
)
from ocimodel.errors import ErrorCode, RegistryError

SHELL_IMAGE = ("bashInteractive", "cacert", "coreutils", "iana-etc", "moreutils", "nano")

# Upstream's builder_test.go cases (ImageFromName), then the cases where we differ.
PARSE_CASES = [
    pytest.param("hello", ("cacert", "hello", "iana-etc"), Arch.AMD64, id="upstream-simple"),
    pytest.param(
        "hello/git/htop",
        ("cacert", "git", "hello", "htop", "iana-etc"),
        Arch.AMD64,
        id="upstream-multiple-sorted",
    ),
    pytest.param("shell", SHELL_IMAGE, Arch.AMD64, id="upstream-shell"),
    pytest.param(
        "shell/htop",
        ("bashInteractive", "cacert", "coreutils", "htop", "iana-etc", "moreutils", "nano"),
        Arch.AMD64,
        id="upstream-shell-multiple",
    ),
    pytest.param("shell/arm64", SHELL_IMAGE, Arch.ARM64, id="upstream-shell-arm64"),
    pytest.param("arm64/shell", SHELL_IMAGE, Arch.ARM64, id="arm64-first"),
    pytest.param("arm64/hello", ("cacert", "hello", "iana-etc"), Arch.ARM64, id="arm64-leading"),
    # Fixed here: meta-packages count anywhere, not only as a leading run.
    pytest.param("hello/arm64", ("cacert", "hello", "iana-etc"), Arch.ARM64, id="arm64-trailing"),
    pytest.param(
        "git/shell/htop",
        ("bashInteractive", "cacert", "coreutils", "git", "htop", "iana-etc", "moreutils", "nano"),
        Arch.AMD64,
        id="shell-in-the-middle",
    ),
    pytest.param(
        "htop/arm64/shell",
        ("bashInteractive", "cacert", "coreutils", "htop", "iana-etc", "moreutils", "nano"),
        Arch.ARM64,
        id="both-meta-packages-trailing",
    ),
    # Fixed here: de-duplication, case-insensitively; the exact attribute name wins.
    pytest.param("shell/bashinteractive", SHELL_IMAGE, Arch.AMD64, id="dedup-bashinteractive"),
    pytest.param("bashinteractive/shell", SHELL_IMAGE, Arch.AMD64, id="dedup-either-order"),
    pytest.param("shell/nano/coreutils", SHELL_IMAGE, Arch.AMD64, id="dedup-shell-members"),
    pytest.param("hello/hello", ("cacert", "hello", "iana-etc"), Arch.AMD64, id="dedup-repeat"),
    pytest.param("shell/shell", SHELL_IMAGE, Arch.AMD64, id="dedup-shell-twice"),
    pytest.param("cacert", ("cacert", "iana-etc"), Arch.AMD64, id="dedup-always-included"),
    pytest.param("iana-etc/cacert", ("cacert", "iana-etc"), Arch.AMD64, id="dedup-both-included"),
    pytest.param("arm64", ("cacert", "iana-etc"), Arch.ARM64, id="arm64-alone"),
    pytest.param("arm64/arm64", ("cacert", "iana-etc"), Arch.ARM64, id="arm64-twice"),
    # Attribute paths and the nixpkgs spellings the Nix side resolves.
    pytest.param(
        "python3packages.numpy",
        ("cacert", "iana-etc", "python3packages.numpy"),
        Arch.AMD64,
        id="dotted-attribute-path",
    ),
    pytest.param(
        "xorg.xev/haskellpackages.hunit",
        ("cacert", "haskellpackages.hunit", "iana-etc", "xorg.xev"),
        Arch.AMD64,
        id="two-dotted-paths-sorted",
    ),
    pytest.param("1password", ("1password", "cacert", "iana-etc"), Arch.AMD64, id="leading-digit"),
    pytest.param(
        "gnu-hello/a_b/c__d",
        ("a_b", "c__d", "cacert", "gnu-hello", "iana-etc"),
        Arch.AMD64,
        id="grammar-separators",
    ),
    pytest.param(
        "shells", ("cacert", "iana-etc", "shells"), Arch.AMD64, id="shell-prefix-is-a-package"
    ),
    pytest.param(
        "arm64-tools", ("arm64-tools", "cacert", "iana-etc"), Arch.AMD64, id="arm64-prefix"
    ),
]


@pytest.mark.parametrize(("name", "packages", "arch"), PARSE_CASES)
def test_parse_name(name: str, packages: tuple[str, ...], arch: Arch) -> None:
    parsed = parse_name(name)
    assert parsed.packages == packages
    assert parsed.arch is arch


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("htop/git", "git/htop", id="order"),
        pytest.param("shell/hello", "hello/shell", id="meta-order"),
        pytest.param("shell/bashinteractive", "shell", id="dedup-shell"),
        pytest.param("hello/cacert", "hello", id="dedup-cacert"),
        pytest.param("arm64/hello", "hello/arm64", id="arm64-position"),
    ],
)
def test_equivalent_names_ask_for_the_same_image(first: str, second: str) -> None:
    assert parse_name(first) == parse_name(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("hello", "arm64/hello", id="arch"),
        pytest.param("hello", "shell/hello", id="shell"),
        pytest.param("ab/c", "a/bc", id="no-separator-collision"),
    ],
)
def test_different_names_ask_for_different_images(first: str, second: str) -> None:
    assert parse_name(first) != parse_name(second)


def test_every_image_holds_the_always_included_packages() -> None:
    assert ALWAYS_INCLUDED == ("cacert", "iana-etc")
    assert set(ALWAYS_INCLUDED) <= set(parse_name("busybox").packages)


def test_shell_adds_exactly_its_four_packages() -> None:
    assert SHELL_PACKAGES == ("bashInteractive", "coreutils", "moreutils", "nano")
    assert set(parse_name("shell").packages) - set(ALWAYS_INCLUDED) == set(SHELL_PACKAGES)


@pytest.mark.parametrize(
    ("arch", "nix_system", "oci_arch"),
    [
        pytest.param(Arch.AMD64, "x86_64-linux", "amd64", id="amd64"),
        pytest.param(Arch.ARM64, "aarch64-linux", "arm64", id="arm64"),
    ],
)
def test_arch_maps_nix_system_to_image_arch(arch: Arch, nix_system: str, oci_arch: str) -> None:
    assert arch.nix_system == nix_system
    assert arch.oci_arch == oci_arch


INVALID_NAMES = [
    pytest.param("Hello", id="uppercase"),
    pytest.param("shell/Git", id="uppercase-component"),
    pytest.param("", id="empty"),
    pytest.param("/hello", id="leading-slash"),
    pytest.param("hello/", id="trailing-slash"),
    pytest.param("hello//git", id="empty-component"),
    pytest.param("-hello", id="leading-dash"),
    pytest.param("hello-", id="trailing-dash"),
    pytest.param(".hello", id="leading-dot"),
    pytest.param("a..b", id="double-dot"),
    pytest.param("a___b", id="triple-underscore"),
    pytest.param("a._b", id="mixed-separators"),
    pytest.param("gtk+", id="plus"),
    pytest.param("hello world", id="space"),
    pytest.param("hello;rm", id="semicolon"),
    pytest.param('a"b', id="quote"),
    pytest.param("${pkgs}", id="nix-interpolation"),
    pytest.param("héllo", id="non-ascii"),
    pytest.param("hello\n", id="trailing-newline"),
]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_parse_name_rejects_invalid_names(name: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_name(name)
    assert info.value.code is ErrorCode.NAME_INVALID
    assert info.value.status == 400


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_validate_name_rejects_what_parse_name_rejects(name: str) -> None:
    with pytest.raises(RegistryError) as info:
        validate_name(name)
    assert info.value.code is ErrorCode.NAME_INVALID


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("hello", id="simple"),
        pytest.param("shell/git/htop", id="components"),
        pytest.param("python3packages.numpy", id="dotted"),
        pytest.param("a--b", id="dashes"),
        pytest.param("a__b", id="double-underscore"),
        pytest.param("0ad", id="leading-digit"),
    ],
)
def test_validate_name_returns_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("length", "limit", "valid"),
    [
        pytest.param(DEFAULT_MAX_NAME_LENGTH, DEFAULT_MAX_NAME_LENGTH, True, id="default-at-limit"),
        pytest.param(
            DEFAULT_MAX_NAME_LENGTH + 1, DEFAULT_MAX_NAME_LENGTH, False, id="default-over-limit"
        ),
        pytest.param(10, 10, True, id="custom-at-limit"),
        pytest.param(11, 10, False, id="custom-over-limit"),
    ],
)
def test_name_length_limit(length: int, limit: int, valid: bool) -> None:
    name = "a" * length
    if valid:
        assert validate_name(name, limit) == name
        assert parse_name(name, max_length=limit).packages == ("a" * length, "cacert", "iana-etc")
        return
    for check in (lambda: validate_name(name, limit), lambda: parse_name(name, max_length=limit)):
        with pytest.raises(RegistryError) as info:
            check()
        assert info.value.code is ErrorCode.NAME_INVALID
        assert f"the limit is {limit}" in info.value.message


def test_invalid_name_detail_names_the_request() -> None:
    with pytest.raises(RegistryError) as info:
        parse_name("Hello/World")
    assert info.value.detail == {"name": "Hello/World"}
    assert "lowercase" in info.value.message


@pytest.mark.parametrize(
    ("name", "limit", "count", "valid"),
    [
        # shell (4) + cacert + iana-etc = 6
        pytest.param("shell", 6, 6, True, id="shell-at-limit"),
        pytest.param("shell/hello", 6, 7, False, id="shell-over-limit"),
        # duplicates are counted once
        pytest.param("shell/nano/nano/coreutils", 6, 6, True, id="duplicates-counted-once"),
        pytest.param("a/b/c", 5, 5, True, id="plain-at-limit"),
        pytest.param("a/b/c/d", 5, 6, False, id="plain-over-limit"),
    ],
)
def test_package_count_limit(name: str, limit: int, count: int, valid: bool) -> None:
    if valid:
        assert len(parse_name(name, max_packages=limit).packages) == count
        return
    with pytest.raises(RegistryError) as info:
        parse_name(name, max_packages=limit)
    assert info.value.code is ErrorCode.NAME_INVALID
    assert f"asks for {count} packages, the limit is {limit}" in info.value.message


@pytest.mark.parametrize(
    ("packages", "expected"),
    [
        pytest.param([], (), id="empty"),
        pytest.param(["b", "a", "c"], ("a", "b", "c"), id="sorted"),
        pytest.param(["a", "a"], ("a",), id="dedup"),
        pytest.param(["bashinteractive", "bashInteractive"], ("bashInteractive",), id="caps-later"),
        pytest.param(["bashInteractive", "bashinteractive"], ("bashInteractive",), id="caps-first"),
        pytest.param(["Zlib", "apr"], ("apr", "Zlib"), id="case-insensitive-sort"),
        pytest.param(
            ["python3Packages.numpy", "python3packages.numpy", "xorg.xev"],
            ("python3Packages.numpy", "xorg.xev"),
            id="dotted-dedup",
        ),
    ],
)
def test_normalise_packages(packages: list[str], expected: tuple[str, ...]) -> None:
    assert normalise_packages(packages) == expected


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("latest", id="latest"),
        pytest.param("v1.2.3", id="version"),
        pytest.param("_private", id="leading-underscore"),
        pytest.param("Release-2024_01", id="mixed"),
        pytest.param("0123456789abcdef0123456789abcdef01234567", id="commit"),
        pytest.param("a" * 128, id="max-length"),
    ],
)
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("", id="empty"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("-flag", id="leading-dash"),
        pytest.param("a" * 129, id="too-long"),
        pytest.param("a/b", id="slash"),
        pytest.param("sha256:abc", id="colon"),
        pytest.param("a b", id="space"),
    ],
)
def test_validate_tag_rejects(tag: str) -> None:
    with pytest.raises(RegistryError) as info:
        validate_tag(tag)
    assert info.value.code is ErrorCode.MANIFEST_UNKNOWN
    assert info.value.detail == {"tag": tag}
