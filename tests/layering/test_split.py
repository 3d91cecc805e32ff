"""The docstring's worked examples and the rules of `split_layers`, table-driven."""

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


# The docstring's example with popularity data: platform stacks and a private path.
MB = 1_000_000
(GLIBC2, OPENSSL, LIBFFI, PYTHON, OPENBLAS, NUMPY, CURL, APP) = (
    _p(n)
    for n in (
        "glibc-2.39",
        "openssl-3.0",
        "libffi-3.4",
        "python3-3.12",
        "openblas-0.3",
        "numpy-1.26",
        "curl-8.5",
        "app-1.0",
    )
)
PY_GRAPH = {
    GLIBC2: PathInfo(30 * MB, ()),
    OPENSSL: PathInfo(6 * MB, (GLIBC2,)),
    LIBFFI: PathInfo(MB // 5, (GLIBC2,)),
    PYTHON: PathInfo(100 * MB, (GLIBC2, OPENSSL, LIBFFI)),
    OPENBLAS: PathInfo(40 * MB, (GLIBC2,)),
    NUMPY: PathInfo(35 * MB, (PYTHON, OPENBLAS)),
    CURL: PathInfo(2 * MB, (GLIBC2, OPENSSL)),
    APP: PathInfo(MB, (NUMPY, CURL)),
}
POPULARITY = {
    "glibc-2.39": 20000,
    "python3-3.12": 6000,
    "openssl-3.0": 900,
    "curl-8.5": 700,
    "libffi-3.4": 300,
    "numpy-1.26": 150,
    "openblas-0.3": 2,
    "app-1.0": 1,
}
PY_STACK = sorted([PYTHON, OPENSSL, LIBFFI])


def test_worked_example_with_popularity() -> None:
    app = split_layers(PY_GRAPH, [APP], 4, POPULARITY)
    assert app == [[GLIBC2], PY_STACK, sorted([NUMPY, OPENBLAS]), sorted([APP, CURL])]
    second = split_layers(PY_GRAPH, [PYTHON, CURL], 4, POPULARITY)
    assert second == [[GLIBC2], PY_STACK, [CURL]]
    new = [layer for layer in second if layer not in app]
    assert sum(PY_GRAPH[p].nar_size for layer in new for p in layer) == 2 * MB


def test_worked_example_without_popularity_is_size_first() -> None:
    app = split_layers(PY_GRAPH, [APP], 4)
    assert app == [[PYTHON], [OPENBLAS], [NUMPY], sorted([APP, CURL, GLIBC2, LIBFFI, OPENSSL])]
    second = split_layers(PY_GRAPH, [PYTHON, CURL], 4)
    assert second == [[GLIBC2], [OPENSSL], [PYTHON], sorted([CURL, LIBFFI])]
    new = [layer for layer in second if layer not in app]
    assert sum(PY_GRAPH[p].nar_size for layer in new for p in layer) == 38_200_000


@pytest.mark.parametrize(("python", "is_platform"), [(2500, True), (2499, False)])
def test_a_platform_has_at_least_an_eighth_of_the_top_popularity(
    python: int, is_platform: bool
) -> None:
    layers = split_layers(PY_GRAPH, [PYTHON], 94, {**POPULARITY, "python3-3.12": python})
    assert (PY_STACK in layers) is is_platform
    assert sorted(p for layer in layers for p in layer) == sorted([*PY_STACK, GLIBC2])


def test_the_top_is_the_images_most_popular_path() -> None:
    # Without glibc's count, python3 is the top: the stack takes glibc too.
    popularity = {k: v for k, v in POPULARITY.items() if k != "glibc-2.39"}
    assert split_layers(PY_GRAPH, [PYTHON], 94, popularity) == [sorted([*PY_STACK, GLIBC2])]


def test_a_private_path_joins_its_only_referrer_unless_asked_for() -> None:
    assert sorted([NUMPY, OPENBLAS]) in split_layers(PY_GRAPH, [NUMPY], 94, POPULARITY)
    asked = split_layers(PY_GRAPH, [NUMPY, OPENBLAS], 94, POPULARITY)
    assert [OPENBLAS] in asked and [NUMPY] in asked


def test_a_private_chain_joins_its_top() -> None:
    leaf, mid, top = _p("leaf-1"), _p("mid-1"), _p("top-1")
    graph = {leaf: PathInfo(5, ()), mid: PathInfo(3, (leaf,)), top: PathInfo(1, (mid,))}
    popularity = {"leaf-1": 2, "mid-1": 2, "top-1": 40, "other-1": 1000}
    assert split_layers(graph, [top], 5, popularity) == [sorted([leaf, mid, top])]


@pytest.mark.parametrize(("size", "joins"), [(3, True), (5, True), (6, False)])
def test_a_paired_path_joins_its_one_referrer_here_unless_bigger(size: int, joins: bool) -> None:
    # Two referrers in the package set (popularity 3), `left` and `right`.
    libc, pair, left, right = _p("libc-1"), _p("pair-1"), _p("left-1"), _p("right-1")
    graph = {
        libc: PathInfo(1, ()),
        pair: PathInfo(size, (libc,)),
        left: PathInfo(5, (pair, libc)),
        right: PathInfo(7, (pair, libc)),
    }
    popularity = {"libc-1": 1000, "pair-1": 3, "left-1": 1, "right-1": 1}
    alone = split_layers(graph, [left], 5, popularity)
    assert (sorted([left, pair]) in alone) is joins
    assert ([pair] in alone) is not joins
    # With both referrers here it is a unit of its own; asked for by name too.
    assert [pair] in split_layers(graph, [left, right], 5, popularity)
    assert [pair] in split_layers(graph, [left, pair], 5, popularity)


def test_popularity_orders_the_manifest_and_the_rest_comes_last() -> None:
    layers = split_layers(PY_GRAPH, [APP], 94, POPULARITY)
    assert layers == [[GLIBC2], PY_STACK, [CURL], sorted([NUMPY, OPENBLAS]), [APP]]
    assert split_layers(PY_GRAPH, [APP], 3, POPULARITY)[-1] == sorted([APP, CURL, GLIBC2])


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
