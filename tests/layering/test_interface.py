"""The public contract of `split_layers`, whatever the algorithm inside."""

from __future__ import annotations

import pytest

from layering import DEFAULT_BUDGET, PathInfo, split_layers


def _p(name: str) -> str:
    return f"/nix/store/{name[0] * 32}-{name}"


GLIBC, LIBIDN, UNISTR, HELLO, BASH = (
    _p("glibc-2.33"),
    _p("idn2-2.3.2"),
    _p("unistring-0.9.10"),
    _p("hello-2.10"),
    _p("bash-5.1"),
)
GRAPH = {
    GLIBC: PathInfo(31_000_000, (GLIBC,)),  # a self-reference, as Nix records it
    UNISTR: PathInfo(1_600_000, (GLIBC,)),
    LIBIDN: PathInfo(260_000, (UNISTR, GLIBC)),
    HELLO: PathInfo(200_000, (GLIBC,)),
    BASH: PathInfo(1_500_000, (GLIBC, LIBIDN)),
}


def test_default_budget_leaves_room_below_dockers_limit() -> None:
    assert DEFAULT_BUDGET == 94


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5, 94])
@pytest.mark.parametrize(
    ("roots", "closure"),
    [
        ([HELLO], {HELLO, GLIBC}),
        ([BASH], {BASH, LIBIDN, UNISTR, GLIBC}),
        ([HELLO, BASH], set(GRAPH)),
        ([GLIBC], {GLIBC}),
    ],
)
def test_layers_partition_the_closure_within_budget(
    roots: list[str], closure: set[str], budget: int
) -> None:
    layers = split_layers(GRAPH, roots, budget)
    assert 1 <= len(layers) <= budget
    flat = [p for layer in layers for p in layer]
    assert sorted(flat) == sorted(closure)  # each path exactly once
    assert all(layer == sorted(layer) and layer for layer in layers)


def test_paths_outside_the_closure_are_ignored() -> None:
    layers = split_layers(GRAPH, [HELLO], DEFAULT_BUDGET)
    assert sorted(p for layer in layers for p in layer) == sorted([HELLO, GLIBC])


def test_enough_budget_gives_every_path_its_own_layer() -> None:
    layers = split_layers(GRAPH, [HELLO, BASH], 5)
    assert sorted(layers) == sorted([p] for p in GRAPH)


def test_one_layer_budget_gives_the_whole_closure() -> None:
    assert split_layers(GRAPH, [BASH, HELLO], 1) == [sorted(GRAPH)]


def test_order_of_roots_and_of_the_mapping_does_not_matter() -> None:
    reversed_graph = dict(reversed(list(GRAPH.items())))
    for budget in (1, 2, 3, 4):
        assert split_layers(GRAPH, [HELLO, BASH], budget) == split_layers(
            reversed_graph, [BASH, HELLO, BASH], budget
        )


@pytest.mark.parametrize("budget", [0, -3])
def test_budget_below_one_is_rejected(budget: int) -> None:
    with pytest.raises(ValueError, match="budget must be at least 1"):
        split_layers(GRAPH, [HELLO], budget)


def test_missing_root_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"root .*nope.* is not in the graph"):
        split_layers(GRAPH, [HELLO, "/nix/store/nope"], 3)


def test_missing_reference_is_rejected() -> None:
    graph = {**GRAPH, HELLO: PathInfo(1, (GLIBC, "/nix/store/gone"))}
    with pytest.raises(ValueError, match=r"reference .*gone.* of .*hello.* is not in the graph"):
        split_layers(graph, [HELLO], 3)


def test_empty_roots_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one root"):
        split_layers(GRAPH, [], 3)
