"""Split an image's closure into layers (first, simple version).

The largest `budget - 1` paths each get a layer; everything else shares one layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from layering.graph import PathInfo, closure, validate_budget


def split_layers(
    graph: Mapping[str, PathInfo],
    roots: Sequence[str],
    budget: int,
    popularity: Mapping[str, int] | None = None,
) -> list[list[str]]:
    """Partition the closure of `roots` into at most `budget` layers, in manifest order."""
    validate_budget(budget)
    paths = closure(graph, roots)
    if len(paths) <= budget:
        return [[p] for p in paths]
    by_size = sorted(paths, key=lambda p: (-graph[p].nar_size, p))
    singles = by_size[: budget - 1]
    rest = sorted(by_size[budget - 1 :])
    # The merged rest differs between images, so it goes last (shared prefix first).
    return [*[[p] for p in singles], rest]
