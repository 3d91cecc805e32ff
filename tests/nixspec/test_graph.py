"""Closure graphs from `nix path-info --json --recursive` (`nixspec.graph`)."""

from __future__ import annotations

import json

import pytest

from layering import PathInfo
from nixspec.graph import closure_size, parse_path_info

GLIBC = "/nix/store/" + "g" * 32 + "-glibc-2.39"
HELLO = "/nix/store/" + "h" * 32 + "-hello-2.12"
BASH = "/nix/store/" + "b" * 32 + "-bash-5.2"

EXPECTED = {
    BASH: PathInfo(1_500_000, (GLIBC,)),
    GLIBC: PathInfo(30_000_000, ()),
    HELLO: PathInfo(200_000, (BASH, GLIBC)),
}

# Nix <= 2.18: a list of objects with "path"; self-references included.
LIST_FORM = json.dumps(
    [
        {"path": HELLO, "narSize": 200_000, "references": [HELLO, GLIBC, BASH], "valid": True},
        {"path": GLIBC, "narSize": 30_000_000, "references": [GLIBC]},
        {"path": BASH, "narSize": 1_500_000, "references": [GLIBC, GLIBC]},
    ]
)
# Newer Nix: an object keyed by store path.
DICT_FORM = json.dumps(
    {
        GLIBC: {"narSize": 30_000_000, "references": [GLIBC], "narHash": "sha256-x"},
        HELLO: {"narSize": 200_000, "references": [GLIBC, BASH, HELLO]},
        BASH: {"narSize": 1_500_000, "references": [GLIBC]},
    }
)


@pytest.mark.parametrize(
    "text", [pytest.param(LIST_FORM, id="list"), pytest.param(DICT_FORM, id="dict")]
)
def test_both_output_shapes_give_the_same_graph(text: str) -> None:
    graph = parse_path_info(text)
    assert graph == EXPECTED
    assert list(graph) == sorted(graph)  # no iteration order leaks


def test_references_are_sorted_and_deduplicated_without_self() -> None:
    graph = parse_path_info(LIST_FORM)
    for path, info in graph.items():
        assert path not in info.references
        assert list(info.references) == sorted(set(info.references))


def test_missing_references_key_means_none() -> None:
    text = json.dumps({GLIBC: {"narSize": 7}})
    assert parse_path_info(text) == {GLIBC: PathInfo(7, ())}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            json.dumps({HELLO: {"narSize": 1, "references": [GLIBC]}}),
            "not closed",
            id="not-closed",
        ),
        pytest.param(
            json.dumps([{"path": HELLO, "narSize": 1, "references": [], "valid": False}]),
            "not valid",
            id="invalid-path-list",
        ),
        pytest.param(json.dumps({HELLO: {"valid": False}}), "not valid", id="invalid-path-dict"),
        pytest.param(json.dumps("hello"), "unexpected", id="a-string"),
        pytest.param(json.dumps(42), "unexpected", id="a-number"),
    ],
)
def test_malformed_output_is_rejected(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_path_info(text)


@pytest.mark.parametrize(
    ("graph", "size"),
    [
        pytest.param({}, 0, id="empty"),
        pytest.param(EXPECTED, 31_700_000, id="closure"),
        pytest.param({GLIBC: PathInfo(5, ())}, 5, id="one"),
    ],
)
def test_closure_size_sums_nar_sizes(graph: dict[str, PathInfo], size: int) -> None:
    assert closure_size(graph) == size
