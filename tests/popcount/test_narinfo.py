"""Pure parts of popcount, table-driven: store paths, narinfos, names, counting."""

from __future__ import annotations

import pytest

from popcount.count import popularity, top_packages
from popcount.narinfo import StorePath, package_name, parse_store_path, references

HASH = "0kcgfjmjsx717p6rjygyamlmw324ifd6"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/nix/store/{HASH}-libfoo-1.2.3", StorePath(HASH, "libfoo-1.2.3")),
        (f"{HASH}-libfoo-1.2.3", StorePath(HASH, "libfoo-1.2.3")),
        (f"  /nix/store/{HASH}-a  ", StorePath(HASH, "a")),
        (f"/nix/store/{HASH}", None),  # no name
        ("/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-x", None),  # e is not in Nix's base32
        (f"/gnu/store/{HASH}-x", None),
        ("", None),
    ],
)
def test_store_paths(text: str, expected: StorePath | None) -> None:
    assert parse_store_path(text) == expected


def test_references_of_a_narinfo() -> None:
    text = (
        f"StorePath: /nix/store/{HASH}-foo-1.0\nURL: nar/x.nar\nCompression: xz\n"
        f"References: {HASH}-foo-1.0 3sjr522jwhk0zpsjb1hwx65zi09vi7wa-busybox-1.35.0\n"
        "Sig: cache.nixos.org-1:abc=\n"
    )
    assert [r.name for r in references(text)] == ["foo-1.0", "busybox-1.35.0"]
    assert references(f"StorePath: /nix/store/{HASH}-x\nReferences: \n") == []
    assert references(f"StorePath: /nix/store/{HASH}-x\n") == []
    with pytest.raises(ValueError, match="not a narinfo"):
        references("<html>Service Unavailable</html>")


@pytest.mark.parametrize(
    ("name", "pname"),
    [
        ("hello-2.12.1", "hello"),
        ("foo-bar-2.0", "foo-bar"),
        ("python3.11-urllib3-2.0.7", "python3.11-urllib3"),
        ("bash-interactive-5.2-p15", "bash-interactive"),
        ("nss-cacert-3.95", "nss-cacert"),
        ("7zz-23.01", "7zz"),
        ("multi-output-1.0-bin", "multi-output"),
        ("iana-etc-20231227", "iana-etc"),
        ("source", "source"),
    ],
)
def test_package_names_split_like_parse_drv_name(name: str, pname: str) -> None:
    assert package_name(name) == pname


def path(name: str, index: int = 0) -> StorePath:
    return StorePath(f"{index:032d}".replace("0", "a").replace("1", "b")[:32], name)


def test_popularity_counts_references_and_drops_counts_of_one() -> None:
    glibc, zlib, curl = path("glibc-2.38"), path("zlib-1.3"), path("curl-8.4")
    counts = popularity(
        [
            [glibc],  # glibc's reference to itself counts
            [zlib, glibc],
            [curl, zlib, glibc],
            [glibc],
        ]
    )
    assert counts == {"glibc-2.38": 4, "zlib-1.3": 2}  # curl: 1, dropped


def test_top_packages_rank_the_listed_by_count_then_name() -> None:
    listed = [
        path("curl-8.4"),
        path("curl-8.4-dev"),
        path("zlib-1.3"),
        path("glibc-2.38"),
        path("SDL2-2.28.5"),
        path("libc++-17.0"),  # "+" is no image name character
    ]
    counts = {"glibc-2.38": 40, "zlib-1.3": 9, "curl-8.4-dev": 3}
    assert top_packages(listed, counts, 10) == [
        ("glibc", 40),
        ("zlib", 9),
        ("curl", 3),  # the best of its outputs
        ("sdl2", 0),  # lowercase: lookup is case-insensitive
    ]
    assert top_packages(listed, counts, 2) == [("glibc", 40), ("zlib", 9)]
