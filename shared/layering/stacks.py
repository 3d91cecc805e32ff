"""Units: the groups of paths that `split_layers` never splits.

Units are decided by facts about the paths themselves (their own closures and their
popularity), so a unit comes out as the very same set of paths in every image that
contains it (for a stack: and the same more popular platforms), and a layer made of it
is shared. `layering.split` explains why each kind pays and how the thresholds were
measured.

- A *platform stack*. A platform is a store path that a large share of the package set
  references directly: the C library, the C++ runtime, Python, Perl. Its stack is its
  closure minus the stacks of more popular platforms. Every image containing the
  platform contains its whole closure, and the more popular platforms, which could
  have claimed part of it, are the widely shared ones.
- A *private chain*: a path with exactly one referrer in the whole package set
  (popularity 2 in Nixery's format) comes with that referrer in every image (unless it
  is asked for by name), so it joins the referrer's unit; chains of them join the top.
  A *paired* path, with exactly two referrers in the package set (popularity 3), joins
  the chain the same way when only one of them is in the image and it is no bigger
  than that referrer: it comes with one of the two in every image, so its unit is one
  of at most three sets (with either referrer, or alone when both are there), the
  same set in every image with the same one referrer.
- Every other path is a unit of its own.

Without popularity data every path is its own unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from layering.graph import STORE_PREFIX_LEN, PathInfo, package_name

PLATFORM_SHARE = 8
"""A platform is referenced by at least 1/`PLATFORM_SHARE` as many packages as the most
popular path of the image (normally the C library)."""

PRIVATE = 2
"""Popularity of a path referenced by exactly one package (Nixery counts 1 + referrers)."""

PAIRED = 3
"""Popularity of a path referenced by exactly two packages."""


def popularity_counts(paths: Sequence[str], popularity: Mapping[str, int] | None) -> dict[str, int]:
    """The popularity of each path of `paths` that the data names."""
    if not popularity:
        return {}
    # `package_name`, inlined: this runs for every path of the closure.
    get = popularity.get
    skip = STORE_PREFIX_LEN
    counts: dict[str, int] = {}
    for path in paths:
        count = get(path[skip:] if len(path) > skip and path.startswith("/nix/store/") else path)
        if count is not None:
            counts[path] = count
    return counts


def platforms(counts: Mapping[str, int], top: int) -> list[str]:
    """The platforms among the paths of `counts`, most popular first.

    `counts` maps paths to their popularity, `top` is the largest of them. A platform
    has a referrer (popularity above 1) and at least 1/`PLATFORM_SHARE` of `top`. Ties
    are broken by name-version, which an update that only renames paths keeps, then by
    path.
    """
    found = [
        (-count, package_name(path), path)
        for path, count in counts.items()
        if count > 1 and count * PLATFORM_SHARE >= top
    ]
    found.sort()
    return [path for _, _, path in found]


def platform_stacks(
    graph: Mapping[str, PathInfo], anchors: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """(platform, its stack) for each of `anchors`, in that order, if not empty.

    Each stack is the platform's closure minus the stacks before it, sorted. The stacks
    claimed so far always form a union of closures, so the search stops at any claimed
    path: everything under it is claimed too.
    """
    claimed: set[str] = set()
    stacks: list[tuple[str, list[str]]] = []
    for platform in anchors:
        if platform in claimed:
            continue  # inside a more popular platform's stack, and so is its closure
        stack = [platform]
        claimed.add(platform)
        todo = [platform]
        while todo:
            for ref in graph[todo.pop()].references:
                if ref not in claimed:
                    claimed.add(ref)
                    stack.append(ref)
                    todo.append(ref)
        stack.sort()
        stacks.append((platform, stack))
    return stacks


def groups(
    graph: Mapping[str, PathInfo],
    referrers: Mapping[str, int],
    found_by: Mapping[str, str],
    counts: Mapping[str, int],
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The units of several paths of a closure; every other path is a unit of its own.

    `referrers` and `found_by` come from `layering.graph.walk` (a closure), `counts`
    from `popularity_counts`. Returns each unit of several paths, sorted, by its first
    path, and its representative (its platform or the top of its private chain) by
    its first path too. A chain may hold private and paired paths.
    """
    if not counts:
        return {}, {}
    stacks = platform_stacks(graph, platforms(counts, max(counts.values())))
    units = {stack[0]: stack for _, stack in stacks if len(stack) > 1}
    reps = {stack[0]: platform for platform, stack in stacks if len(stack) > 1}
    in_stack = {p for _, stack in stacks for p in stack}
    # Paths that ride with their one referrer in the closure (a root, asked for by name,
    # never does): private ones (one referrer in the package set) and paired ones (two
    # referrers, the other one not here) no bigger than that referrer.
    one, two = PRIVATE, PAIRED  # locals: this runs for every path of the closure
    private = {
        p
        for p, count in counts.items()
        if one <= count <= two  # PAIRED is PRIVATE + 1
        and referrers[p] == 1
        and p in found_by
        and p not in in_stack
        and (count == one or graph[p].nar_size <= graph[found_by[p]].nar_size)
    }
    chained: dict[str, list[str]] = {}  # the top of a private chain -> the chain below
    for p in private:
        top = found_by[p]
        while top in private:
            top = found_by[top]
        chained.setdefault(top, []).append(p)
    for top, chain in chained.items():
        unit = sorted([top, *chain])
        units[unit[0]] = unit
        reps[unit[0]] = top
    return units, reps
