"""The size-first algorithm: the docstring's worked example and its rules, table-driven."""

from __future__ import annotations

import pytest

from layering import PathInfo, split_layers


def _p(name: str) -> str:
    return f"/nix/store/{name[0] * 32}-{name}"


GLIBC, UNISTR, BASH, IDN2, HELLO = (
    _p(n) for n in ("glibc-2.33", "unistring-0.9.10", "bash-5.1", "idn2-2.3.2", "hello-2.10")
)
GRAPH = {
    GLIBC: PathInfo(31_000_000, ()),
    UNISTR: PathInfo(1_600_000, (GLIBC,)),
    BASH: PathInfo(1_500_000, (GLIBC, IDN2)),
    IDN2: PathInfo(300_000, (UNISTR, GLIBC)),
    HELLO: PathInfo(200_000, (GLIBC,)),
}


def test_worked_example_of_the_docstring() -> None:
    assert split_layers(GRAPH, [HELLO, BASH], 4) == [[GLIBC], [UNISTR], [BASH], [HELLO, IDN2]]
    alone = split_layers(GRAPH, [BASH], 4)
    assert alone == [[GLIBC], [UNISTR], [IDN2], [BASH]]
    shared = {tuple(x) for x in alone} & {tuple(x) for x in split_layers(GRAPH, [HELLO, BASH], 4)}
    assert shared == {(GLIBC,), (UNISTR,), (BASH,)}


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (1, [sorted(GRAPH)]),
        (2, [[GLIBC], sorted([UNISTR, BASH, IDN2, HELLO])]),
        (3, [[GLIBC], [UNISTR], sorted([BASH, IDN2, HELLO])]),
        # Enough budget: one layer per path, most referenced first, then larger first.
        (5, [[GLIBC], [UNISTR], [IDN2], [BASH], [HELLO]]),
        (94, [[GLIBC], [UNISTR], [IDN2], [BASH], [HELLO]]),
    ],
)
def test_the_largest_paths_get_their_own_layers(budget: int, expected: list[list[str]]) -> None:
    assert split_layers(GRAPH, [HELLO, BASH], budget) == expected


def test_popularity_orders_the_manifest_but_not_the_split() -> None:
    popularity = {"hello-2.10": 900, "idn2-2.3.2": 800}
    without = split_layers(GRAPH, [HELLO, BASH], 5)
    with_pop = split_layers(GRAPH, [HELLO, BASH], 5, popularity)
    assert with_pop == [[HELLO], [IDN2], [GLIBC], [UNISTR], [BASH]]
    assert sorted(with_pop) == sorted(without)
    # Over budget the merged rest always comes last, whatever the popularity.
    assert split_layers(GRAPH, [HELLO, BASH], 3, popularity)[-1] == sorted([BASH, IDN2, HELLO])


def test_equal_sizes_are_broken_by_path() -> None:
    graph = {_p(n): PathInfo(10, ()) for n in ("zeta-1", "alpha-1", "mid-1")}
    assert split_layers(graph, sorted(graph), 2) == [
        [_p("alpha-1")],
        sorted([_p("mid-1"), _p("zeta-1")]),
    ]


def test_negative_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative narSize"):
        split_layers({HELLO: PathInfo(-1, ())}, [HELLO], 3)


@pytest.mark.parametrize("budget", [1.5, "3", True])
def test_non_integer_budget_is_rejected(budget: object) -> None:
    with pytest.raises(ValueError, match="budget must be an integer"):
        split_layers(GRAPH, [HELLO], budget)  # type: ignore[arg-type]


def test_a_single_string_as_roots_is_rejected() -> None:
    with pytest.raises(ValueError, match="not one string"):
        split_layers(GRAPH, HELLO, 3)
