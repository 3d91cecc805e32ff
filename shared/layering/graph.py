"""The closure graph as the layering algorithm sees it.

A Nix closure is a DAG of store paths: each path has a NAR size and references other
paths (Nix also records a path referring to itself, which means nothing here). This
module holds the value type for one path, checks a request, and computes the closure of
the image's roots.

Only the closure of the roots is ever looked at: the caller may hand in a bigger graph
(for example a whole channel's), and paths outside the closure cannot change the result.
Everything is returned in sorted order, so no dict or set iteration order leaks out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STORE_PREFIX_LEN = len("/nix/store/") + 32 + 1
"""`/nix/store/`, the 32-character hash and the dash before the name."""


@dataclass(frozen=True)
class PathInfo:
    """One store path of the closure: its NAR size in bytes and what it references.

    `references` may include the path itself (Nix records self-references); they are
    ignored.
    """

    nar_size: int
    references: tuple[str, ...]


def package_name(path: str) -> str:
    """The `name-version` part of a store path, the key of Nixery's popularity data.

    `/nix/store/<32-char hash>-hello-2.10` -> `hello-2.10`. Anything that does not look
    like a store path is returned whole, so callers may also use plain names.
    """
    if path.startswith("/nix/store/") and len(path) > STORE_PREFIX_LEN:
        return path[STORE_PREFIX_LEN:]
    return path


def closure(graph: Mapping[str, PathInfo], roots: Sequence[str]) -> list[str]:
    """Every path reachable from `roots` (roots included), sorted.

    Raises `ValueError` when there is no root, when a root or a reference is not a key
    of `graph` (naming it), or when a size is negative.
    """
    return sorted(referrer_counts(graph, roots))


def referrer_counts(graph: Mapping[str, PathInfo], roots: Sequence[str]) -> dict[str, int]:
    """For every path of the closure of `roots`: how many closure paths reference it.

    Self-references are ignored (a reference listed twice counts twice: Nix never lists
    one twice, and the counts only order the manifest). Raises like `closure`. The dict's
    order is the traversal's: sort before relying on it.
    """
    return walk(graph, roots)[0]


def walk(
    graph: Mapping[str, PathInfo], roots: Sequence[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """`referrer_counts`, and for every non-root path of the closure one referrer.

    The referrer is the first one the traversal met; for a path with a single referrer
    in the closure it is that referrer. Raises like `closure`.
    """
    if isinstance(roots, str):
        raise ValueError("roots must be a sequence of store paths, not one string")
    if not roots:
        raise ValueError("an image needs at least one root path")
    missing_roots = sorted({r for r in roots if r not in graph})
    if missing_roots:
        raise ValueError(f"root {missing_roots[0]!r} is not in the graph")
    counts = dict.fromkeys(roots, 0)
    found_by: dict[str, str] = {}
    stack = list(counts)
    get = counts.get
    while stack:
        path = stack.pop()
        info = graph[path]
        if info.nar_size < 0:
            raise ValueError(f"path {path!r} has a negative narSize {info.nar_size}")
        for ref in info.references:
            seen = get(ref)
            if seen is None:
                if ref not in graph:
                    raise ValueError(f"reference {ref!r} of {path!r} is not in the graph")
                counts[ref] = 1
                found_by[ref] = path
                stack.append(ref)
            elif ref != path:
                counts[ref] = seen + 1
    return counts, found_by


def validate_budget(budget: int) -> None:
    """Reject a budget that cannot hold even one layer."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise ValueError(f"budget must be an integer, got {budget!r}")
    if budget < 1:
        raise ValueError(f"budget must be at least 1 layer, got {budget}")
