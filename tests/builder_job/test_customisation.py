"""The customisation layer's merge rule (`builder_job.customisation`).

`plan_entries` runs on a fake listing (a table of directories); one test
runs the real listing on a temporary tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder_job.customisation import SKIPPED, Listing, layer_key, list_dir, plan_entries
from builder_job.tarlayer import Entry

A = "/nix/store/aaaa-hello"
B = "/nix/store/bbbb-coreutils"
C = "/nix/store/cccc-nano"

Tree = dict[str, list[tuple[str, bool]]]


def fake(tree: Tree) -> Listing:
    def listing(path: str) -> list[tuple[str, bool]]:
        return sorted(tree.get(path, []), key=lambda item: os.fsencode(item[0]))

    return listing


def d(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode)


def ln(name: str, target: str) -> Entry:
    return Entry(name, "symlink", target=target)


TMP = Entry("tmp", "dir", 0o1777)

CASES = [
    pytest.param([A], {}, [TMP], id="empty-package"),
    pytest.param(
        [A],
        {A: [("bin", True)], f"{A}/bin": [("hello", False)]},
        [d("bin"), ln("bin/hello", f"{A}/bin/hello"), TMP],
        id="top-level-is-a-real-dir",
    ),
    pytest.param(
        [A, C],
        {
            A: [("bin", True)],
            f"{A}/bin": [("hello", False)],
            C: [("bin", True), ("share", True)],
            f"{C}/bin": [("nano", False)],
            f"{C}/share": [("nano", True)],
            f"{C}/share/nano": [("a.nanorc", False)],
        },
        [
            d("bin"),
            ln("bin/hello", f"{A}/bin/hello"),
            ln("bin/nano", f"{C}/bin/nano"),
            d("share"),
            ln("share/nano", f"{C}/share/nano"),
            TMP,
        ],
        id="bins-merged-single-provider-dir-linked-whole",
    ),
    pytest.param(
        [A, B],
        {
            A: [("share", True)],
            f"{A}/share": [("man", True)],
            f"{A}/share/man": [("man1", True)],
            B: [("share", True)],
            f"{B}/share": [("man", True)],
            f"{B}/share/man": [("man1", True), ("man8", True)],
        },
        [
            d("share"),
            d("share/man"),
            d("share/man/man1"),
            ln("share/man/man8", f"{B}/share/man/man8"),
            TMP,
        ],
        id="shared-subdirs-merged-recursively",
    ),
    pytest.param(
        [A, B],
        {
            A: [("bin", True)],
            f"{A}/bin": [("ls", False)],
            B: [("bin", True)],
            f"{B}/bin": [("ls", False)],
        },
        [d("bin"), ln("bin/ls", f"{A}/bin/ls"), TMP],
        id="first-package-wins-a-file",
    ),
    pytest.param(
        [B, A],
        {
            A: [("bin", True)],
            f"{A}/bin": [("ls", False)],
            B: [("bin", True)],
            f"{B}/bin": [("ls", False)],
        },
        [d("bin"), ln("bin/ls", f"{B}/bin/ls"), TMP],
        id="priority-follows-package-order",
    ),
    pytest.param(
        [A, B],
        {
            A: [("lib", True)],
            f"{A}/lib": [("x", False)],
            B: [("lib", True)],
            f"{B}/lib": [("x", True)],
        },
        [d("lib"), ln("lib/x", f"{A}/lib/x"), TMP],
        id="file-and-dir-conflict-first-wins",
    ),
    pytest.param(
        [A, B],
        {
            A: [("lib", True)],
            f"{A}/lib": [("x", True)],
            B: [("lib", True)],
            f"{B}/lib": [("x", False)],
        },
        [d("lib"), ln("lib/x", f"{A}/lib/x"), TMP],
        id="dir-and-file-conflict-first-wins",
    ),
    pytest.param(
        [A, B],
        {A: [("etc", False)], B: [("etc", True)], f"{B}/etc": [("services", False)]},
        [d("etc"), ln("etc/services", f"{B}/etc/services"), TMP],
        id="top-level-stray-file-dropped-for-dir",
    ),
    pytest.param(
        [A],
        {A: [("README", False)]},
        [ln("README", f"{A}/README"), TMP],
        id="top-level-file-linked",
    ),
    pytest.param(
        [A],
        {
            A: [("bin", True), ("nix-support", True)],
            f"{A}/bin": [("hello", False)],
            f"{A}/nix-support": [("propagated-build-inputs", False)],
        },
        [d("bin"), ln("bin/hello", f"{A}/bin/hello"), TMP],
        id="nix-support-skipped",
    ),
    pytest.param(
        [A],
        {
            A: [("share", True)],
            f"{A}/share": [("nix-support", False)],
        },
        [d("share"), ln("share/nix-support", f"{A}/share/nix-support"), TMP],
        id="nix-support-below-top-level-kept",
    ),
    pytest.param(
        [A],
        {A: [("bin", True)], f"{A}/bin": [("b", False), ("a", False), ("B", False), ("_", False)]},
        [
            d("bin"),
            ln("bin/B", f"{A}/bin/B"),
            ln("bin/_", f"{A}/bin/_"),
            ln("bin/a", f"{A}/bin/a"),
            ln("bin/b", f"{A}/bin/b"),
            TMP,
        ],
        id="names-sorted-bytewise",
    ),
    # /usr/bin/env (upstream issue 109)
    pytest.param(
        [B],
        {B: [("bin", True)], f"{B}/bin": [("env", False), ("ls", False)]},
        [
            d("bin"),
            ln("bin/env", f"{B}/bin/env"),
            ln("bin/ls", f"{B}/bin/ls"),
            d("usr"),
            d("usr/bin"),
            ln("usr/bin/env", f"{B}/bin/env"),
            TMP,
        ],
        id="usr-bin-env-added",
    ),
    pytest.param(
        [A, B],
        {
            A: [("usr", True)],
            f"{A}/usr": [("share", True)],
            B: [("bin", True)],
            f"{B}/bin": [("env", False)],
        },
        [
            d("bin"),
            ln("bin/env", f"{B}/bin/env"),
            d("usr"),
            ln("usr/share", f"{A}/usr/share"),
            d("usr/bin"),
            ln("usr/bin/env", f"{B}/bin/env"),
            TMP,
        ],
        id="usr-bin-env-beside-a-real-usr",
    ),
    pytest.param(
        [A, B],
        {
            A: [("usr", True)],
            f"{A}/usr": [("bin", True)],
            f"{A}/usr/bin": [("perl", False)],
            B: [("bin", True)],
            f"{B}/bin": [("env", False)],
        },
        [
            d("bin"),
            ln("bin/env", f"{B}/bin/env"),
            d("usr"),
            ln("usr/bin", f"{A}/usr/bin"),
            TMP,
        ],
        id="never-write-into-a-linked-usr-bin",
    ),
    pytest.param(
        [A, B],
        {
            A: [("usr", True)],
            f"{A}/usr": [("bin", True)],
            f"{A}/usr/bin": [("env", False)],
            B: [("bin", True), ("usr", True)],
            f"{B}/bin": [("env", False)],
            f"{B}/usr": [("bin", True)],
            f"{B}/usr/bin": [("x", False)],
        },
        [
            d("bin"),
            ln("bin/env", f"{B}/bin/env"),
            d("usr"),
            d("usr/bin"),
            ln("usr/bin/env", f"{A}/usr/bin/env"),
            ln("usr/bin/x", f"{B}/usr/bin/x"),
            TMP,
        ],
        id="a-package-usr-bin-env-is-kept",
    ),
    pytest.param(
        [A],
        {A: [("bin", True)], f"{A}/bin": [("env", True)], f"{A}/bin/env": []},
        [
            d("bin"),
            ln("bin/env", f"{A}/bin/env"),
            d("usr"),
            d("usr/bin"),
            ln("usr/bin/env", f"{A}/bin/env"),
            TMP,
        ],
        id="env-target-is-the-merged-entry",
    ),
]


@pytest.mark.parametrize(("packages", "tree", "entries"), CASES)
def test_plan_entries(packages: list[str], tree: Tree, entries: list[Entry]) -> None:
    assert plan_entries(packages, fake(tree)) == entries


def test_tmp_is_world_writable_even_when_a_package_ships_one() -> None:
    tree: Tree = {A: [("tmp", True)], f"{A}/tmp": [("placeholder", False)]}
    entries = plan_entries([A], fake(tree))
    tmp = [e for e in entries if e.name == "tmp"]
    assert tmp == [Entry("tmp", "dir", 0o1777)]


def test_plan_is_deterministic_and_listing_order_does_not_matter() -> None:
    tree: Tree = {
        A: [("share", True), ("bin", True)],
        f"{A}/bin": [("z", False), ("a", False)],
        f"{A}/share": [("doc", True)],
        B: [("share", True)],
        f"{B}/share": [("man", True)],
    }

    def unsorted(path: str) -> list[tuple[str, bool]]:
        return list(reversed(tree.get(path, [])))

    expected = plan_entries([A, B], fake(tree))
    assert plan_entries([A, B], unsorted) == expected
    assert plan_entries([A, B], fake(tree)) == expected


def test_skipped_names() -> None:
    assert frozenset({"nix-support"}) == SKIPPED


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param([A, B], [A, B], True, id="same-paths"),
        pytest.param([A, B], [B, A], False, id="order-is-priority"),
        pytest.param([A], [A, B], False, id="more-paths"),
        pytest.param([A + "x"], [A], False, id="other-path"),
    ],
)
def test_layer_key(first: list[str], second: list[str], same: bool) -> None:
    assert (layer_key(first) == layer_key(second)) is same
    assert len(layer_key(first)) == 64


def test_real_directory_tree(tmp_path: Path) -> None:
    hello = tmp_path / "aaaa-hello"
    coreutils = tmp_path / "bbbb-coreutils"
    (hello / "bin").mkdir(parents=True)
    (hello / "bin" / "hello").write_text("#!/bin/sh\n")
    (hello / "share" / "info").mkdir(parents=True)
    (hello / "nix-support").mkdir()
    (hello / "nix-support" / "setup-hook").write_text("")
    (coreutils / "bin").mkdir(parents=True)
    (coreutils / "bin" / "env").write_text("")
    (coreutils / "bin" / "ls").write_text("")
    (coreutils / "libexec").mkdir()
    (coreutils / "share").symlink_to(hello / "share")  # a link to a directory counts as one
    single_file_output = tmp_path / "cccc-file"
    single_file_output.write_text("not a directory")
    missing = tmp_path / "dddd-missing"

    h, c = str(hello), str(coreutils)
    entries = plan_entries([h, c, str(single_file_output), str(missing)])
    assert entries == [
        d("bin"),
        ln("bin/env", f"{c}/bin/env"),
        ln("bin/hello", f"{h}/bin/hello"),
        ln("bin/ls", f"{c}/bin/ls"),
        d("libexec"),
        d("share"),
        d("share/info"),
        d("usr"),
        d("usr/bin"),
        ln("usr/bin/env", f"{c}/bin/env"),
        TMP,
    ]


@pytest.mark.parametrize(
    ("make", "listing"),
    [
        pytest.param("missing", [], id="missing"),
        pytest.param("file", [], id="a-file"),
        pytest.param("dir", [("Z", False), ("a", True), ("b", False), ("c", True)], id="dir"),
    ],
)
def test_list_dir(tmp_path: Path, make: str, listing: list[tuple[str, bool]]) -> None:
    target = tmp_path / "target"
    if make == "file":
        target.write_text("x")
    elif make == "dir":
        target.mkdir()
        (target / "a").mkdir()
        (target / "b").write_text("")
        (target / "Z").write_text("")
        (target / "c").symlink_to(target / "a")
    assert list_dir(str(target)) == listing
