"""Properties of `split_layers` over random dependency graphs (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from layering import PathInfo, split_layers
from layering.graph import closure

Graph = dict[str, PathInfo]


def _path(prefix: str, i: int) -> str:
    digest = f"{prefix}{i:031d}"[-32:]
    return f"/nix/store/{digest}-pkg{prefix}{i}-1.0"


@st.composite
def dags(draw: st.DrawFn, prefix: str = "a", max_nodes: int = 40) -> tuple[Graph, list[str]]:
    """A random DAG (edges only towards lower indices) and a non-empty set of roots."""
    n = draw(st.integers(min_value=1, max_value=max_nodes))
    paths = [_path(prefix, i) for i in range(n)]
    graph: Graph = {}
    for i, path in enumerate(paths):
        refs = draw(st.lists(st.integers(0, i - 1), max_size=4)) if i else []
        self_ref = draw(st.booleans())
        size = draw(st.integers(min_value=0, max_value=10**9))
        graph[path] = PathInfo(size, tuple(paths[j] for j in refs) + ((path,) if self_ref else ()))
    roots = draw(st.lists(st.sampled_from(paths), min_size=1, max_size=5))
    return graph, roots


budgets = st.integers(min_value=1, max_value=50)
popularities = st.none() | st.dictionaries(
    st.sampled_from([f"pkga{i}-1.0" for i in range(40)]), st.integers(1, 10**6)
)
FAST = settings(max_examples=150, deadline=None)


@FAST
@given(dags(), budgets, popularities)
def test_layers_are_an_exact_partition_within_budget(
    image: tuple[Graph, list[str]], budget: int, popularity: dict[str, int] | None
) -> None:
    graph, roots = image
    layers = split_layers(graph, roots, budget, popularity)
    assert 1 <= len(layers) <= budget
    assert all(layer and layer == sorted(layer) for layer in layers)
    flat = [p for layer in layers for p in layer]
    assert len(flat) == len(set(flat))
    assert sorted(flat) == closure(graph, roots)


@FAST
@given(dags(), budgets, popularities, st.randoms(use_true_random=False))
def test_same_input_in_any_order_gives_the_same_layers(
    image: tuple[Graph, list[str]],
    budget: int,
    popularity: dict[str, int] | None,
    rnd: random.Random,
) -> None:
    graph, roots = image
    items = list(graph.items())
    rnd.shuffle(items)
    shuffled_roots = [*roots, *roots]
    rnd.shuffle(shuffled_roots)
    shuffled_graph = {p: PathInfo(i.nar_size, tuple(reversed(i.references))) for p, i in items}
    assert split_layers(graph, roots, budget, popularity) == split_layers(
        shuffled_graph, shuffled_roots, budget, popularity
    )


@FAST
@given(dags("a"), dags("b"), budgets, popularities)
def test_an_unrelated_image_in_the_graph_changes_nothing(
    image: tuple[Graph, list[str]],
    other: tuple[Graph, list[str]],
    budget: int,
    popularity: dict[str, int] | None,
) -> None:
    graph, roots = image
    other_graph, other_roots = other
    # The other image may even depend on this one's paths: still outside our closure.
    link = PathInfo(5, (*other_graph[other_roots[0]].references, roots[0]))
    combined = {**graph, **other_graph, other_roots[0]: link}
    assert split_layers(combined, roots, budget, popularity) == split_layers(
        graph, roots, budget, popularity
    )


@FAST
@given(dags(max_nodes=60), st.integers(min_value=2, max_value=30), st.data())
def test_an_update_only_changes_layers_holding_updated_paths(
    image: tuple[Graph, list[str]], budget: int, data: st.DataObject
) -> None:
    graph, roots = image
    # Distinct sizes, so renaming cannot reorder ties.
    graph = {p: PathInfo(1000 * i + 1, x.references) for i, (p, x) in enumerate(graph.items())}
    changed_leaf = data.draw(st.sampled_from(closure(graph, roots)))

    # The Nix way: the new version has a new path, and so has every path depending on it.
    depends = {p for p in closure(graph, roots) if changed_leaf in closure(graph, [p])}
    renamed = {p: p.replace("/nix/store/", "/nix/store/u") if p in depends else p for p in graph}
    updated = {
        renamed[p]: PathInfo(i.nar_size, tuple(renamed[r] for r in i.references))
        for p, i in graph.items()
    }
    before = split_layers(graph, roots, budget)
    after = split_layers(updated, [renamed[r] for r in roots], budget)

    kept = {tuple(layer) for layer in after}
    for layer in before:
        if not depends.intersection(layer):
            assert tuple(layer) in kept, f"{layer} changed though no path in it was updated"


@FAST
@given(dags(max_nodes=60), st.integers(min_value=2, max_value=30), popularities, st.data())
def test_with_popularity_an_update_only_changes_layers_holding_updated_paths(
    image: tuple[Graph, list[str]],
    budget: int,
    popularity: dict[str, int] | None,
    data: st.DataObject,
) -> None:
    graph, roots = image
    # Powers of two: no two sets of paths weigh the same, so renaming cannot reorder ties.
    graph = {p: PathInfo(2**i, x.references) for i, (p, x) in enumerate(graph.items())}
    changed_leaf = data.draw(st.sampled_from(closure(graph, roots)))

    # A new hash for the updated paths; the name, hence the popularity, stays.
    depends = {p for p in closure(graph, roots) if changed_leaf in closure(graph, [p])}
    renamed = {p: "/nix/store/u" + p[12:] if p in depends else p for p in graph}
    updated = {
        renamed[p]: PathInfo(i.nar_size, tuple(renamed[r] for r in i.references))
        for p, i in graph.items()
    }
    before = split_layers(graph, roots, budget, popularity)
    after = split_layers(updated, [renamed[r] for r in roots], budget, popularity)

    kept = {tuple(layer) for layer in after}
    for layer in before:
        if not depends.intersection(layer):
            assert tuple(layer) in kept, f"{layer} changed though no path in it was updated"


@FAST
@given(dags(max_nodes=30), st.data())
def test_a_platforms_stack_is_the_same_layer_in_every_image_containing_it(
    image: tuple[Graph, list[str]], data: st.DataObject
) -> None:
    graph, roots = image
    # The only popular path, hence the only platform: its stack is its whole closure.
    platform = data.draw(st.sampled_from(closure(graph, roots)))
    name = platform[len("/nix/store/") + 33 :]
    popularity = {name: 1000}
    stack = closure(graph, [platform])
    other_roots = data.draw(st.lists(st.sampled_from(sorted(graph)), max_size=4))
    for image_roots in (roots, [platform], [*other_roots, platform]):
        assert stack in split_layers(graph, image_roots, 50, popularity)
