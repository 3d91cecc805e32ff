"""Split an image's closure into layers that other images can share.

Why layers matter
-----------------
A client downloads a layer only if it does not have a layer with the same digest, and
the registry stores each digest once. A layer's digest depends only on its set of store
paths, so a layer is shared between two images exactly when both images produce the
very same set. A good layering therefore makes the *same* groups of paths come out in
every image that contains them, and spends the layer budget where the bytes are.

Inputs
------
- the closure graph: for each store path its NAR size and its references;
- the image's roots (the packages asked for); only their closure is looked at, so
  extra paths in the graph (another image's) never change the result;
- a budget: the most layers the image may have (`DEFAULT_BUDGET` = 94);
- optionally popularity data in Nixery's format (`name-version` -> 1 + number of
  direct referrers in the package set). It only orders the manifest (see below).

Algorithm
---------
1. If the closure has at most `budget` paths, every path gets its own layer: that is
   the ideal, each path is then downloaded at most once, whatever the other images.
2. Otherwise the `budget - 1` largest paths (ties broken by path) each get their own
   layer, and all the other paths share the last one, the *rest*.
   - A single-path layer is shared by every image that contains the path: its digest
     cannot depend on anything else. Real closures are a few big paths (compilers,
     runtimes, ICU, LLVM, JDKs) and many small ones, so spending the budget on the
     biggest paths keeps nearly all bytes in perfectly shareable layers.
   - The rest differs between images, so its bytes are downloaded again for each new
     image; by construction it holds the smallest paths, so those re-downloads are
     the cheapest possible.
   - Stable under updates: a package update that renames a few paths (and, the Nix
     way, the paths depending on them) leaves every other single-path layer as it is;
     only the updated paths' layers and the rest change.
3. Manifest order, most likely shared first (clients and Docker share a common
   prefix, moby/moby#38446): single-path layers by popularity (the popularity data
   when given, else the number of referrers inside the image), then by size, then by
   path; the rest comes last. Every layer is sorted, so the result never depends on
   dict or set iteration order.

Thresholds and why they have their value
-----------------------------------------
- `budget - 1` single-path layers and one merged layer: measured on real Debian
  package graphs (`benchmarks/layering.py`), every variant that kept more layers for
  groups of small paths lost more bytes through the single-path layers it gave up
  than the groups saved. Variants measured: Nixery's dominator-tree units (a unit
  changes as soon as another package of the image references one of its paths);
  chains of root closures; groups under popular "hub" paths (stable alone, but
  several times too many for a budget, and merging them loses the stability); a
  "utilities" layer for the closure of the smaller roots (about 1% better at a
  budget of 5, mixed at 10, worse at 20); size thresholds rounded to powers of two so
  images pick the same ones (they leave budget unused and lose more).
- Popularity only orders the manifest. Spending the budget on popular paths (as
  Nixery, nixpkgs' popularity contest and nix2container do) puts small, widely shared
  libraries in their own layers while large paths fall into a merged layer that
  differs in every image. Even each path's true number of images, known beforehand,
  did not pick better single-path layers than size did: a path near the cut is a
  single-path layer in some images and in the rest in others, either way.
- `DEFAULT_BUDGET = 94` (in `layering`): Docker allows about 125 layers per image;
  users add their own layers on top and we add a customisation layer.

Example
-------
Closure of `hello` + `bash` (the roots), budget 4::

    glibc        31.0 MB   referenced by hello, bash, libidn2, libunistring
    libunistring  1.6 MB   referenced by libidn2
    bash          1.5 MB   root
    libidn2       0.3 MB   referenced by bash
    hello         0.2 MB   root

Five paths do not fit in four layers, so the three largest get a layer each (glibc,
libunistring, bash) and the rest is [hello, libidn2]. Manifest order: [glibc] (four
referrers), [libunistring] (one), [bash] (none), [hello, libidn2]. An image of `bash`
alone (four paths) gets one layer per path, and shares [glibc], [libunistring] and
[bash] with the first image: only libidn2 (0.3 MB) is downloaded again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from layering.graph import PathInfo, package_name, referrer_counts, validate_budget


def split_layers(
    graph: Mapping[str, PathInfo],
    roots: Sequence[str],
    budget: int,
    popularity: Mapping[str, int] | None = None,
) -> list[list[str]]:
    """Partition the closure of `roots` into 1..`budget` layers, in manifest order.

    Each layer is a sorted list of store paths; together they contain every path of the
    closure exactly once. Raises `ValueError` for a budget below 1, no roots, or a root
    or reference missing from `graph`.
    """
    validate_budget(budget)
    referrers = referrer_counts(graph, roots)
    paths = sorted(referrers)
    if budget == 1:
        return [paths]

    def shared_first(path: str) -> tuple[int, int, str]:
        # A higher popularity (or in-image referrer count) means more images contain it.
        score = referrers[path]
        if popularity is not None:
            score = popularity.get(package_name(path), score)
        return (-score, -graph[path].nar_size, path)

    if len(paths) <= budget:
        return [[p] for p in sorted(paths, key=shared_first)]
    by_size = sorted(paths, key=lambda p: (-graph[p].nar_size, p))
    singles = sorted(by_size[: budget - 1], key=shared_first)
    return [*([p] for p in singles), sorted(by_size[budget - 1 :])]

