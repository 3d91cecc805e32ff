"""Split an image's closure into layers that other images can share.

Why layers matter
-----------------
A client downloads a layer only if it does not have a layer with the same digest, and
the registry stores each digest once. A layer's digest depends only on its set of store
paths, so a layer is shared between two images exactly when both produce the very same
set. The layers must therefore be decided by facts that do not depend on the image: a
path's own size, its own closure (every image containing a path contains its closure)
and the popularity data. Anything that looks at the rest of the image (which other
packages reference a path, how the budget falls) makes layers that differ from image to
image, and every differing layer is downloaded again.

Inputs
------
- the closure graph: for each store path its NAR size and its references;
- the image's roots (the packages asked for); only their closure is looked at, so
  extra paths in the graph (another image's) never change the result;
- a budget: the most layers the image may have (`DEFAULT_BUDGET` = 94);
- optionally popularity data in Nixery's format (`name-version` -> 1 + number of
  direct referrers in the package set). It is keyed by name and version, so it must
  come from the package set the image is built from: a path it does not name is no
  platform and no private or paired path.

Algorithm
---------
1. Units (`layering.stacks`): groups of paths that are never split.
   - Platform stacks. A platform is a path with at least 1/`PLATFORM_SHARE` (1/8) of
     the popularity of the image's most popular path (normally the C library): the C
     library itself, the C++ runtime, Python, Perl. Most popular first, each platform
     claims its closure minus what the ones before it claimed. Every image with Python
     has Python's whole closure, so its stack (the interpreter, its standard library,
     the libraries they need) is the same set, hence the same layer, in all of them.
   - Private chains. A path whose popularity is 2 has one referrer in the whole package
     set, so it comes with that referrer in every image (unless it is asked for by
     name): it joins the referrer's unit, and chains of them join the top one.
     A paired path (popularity 3: two referrers in the package set) with only one of
     them in the image joins it too, if it is no bigger than that referrer. It comes
     with one of its two referrers in every image, so it is in at most three units
     (with either referrer, or alone when both are there) instead of falling, small,
     into the rest of image after image.
   - Every other path is a unit of its own. Without popularity data there are only
     these, and the algorithm is the size-first split it replaced.
2. If the units fit in the budget, each is a layer. Otherwise the `budget - 1` largest
   units (in bytes, ties by path) each get a layer and all the others share the last
   one, the rest. Real closures are a few big paths and many small ones; a unit's layer
   is shared by every image that has the unit, and the rest holds the smallest units,
   so what the images do not share costs the fewest bytes.
3. Manifest order, most likely shared first (clients and Docker share a common prefix,
   moby/moby#38446): units by the popularity of their platform, chain top or path (the
   number of referrers inside the image without data), then by size, then by path; the
   rest comes last. Every layer is sorted, so dict and set order never leak out.

Stable under updates: a package update renames its paths and, the Nix way, every path
depending on them. A unit none of whose paths changed keeps its paths and its bytes, so
it keeps its layer (unless it weighs exactly as much as a renamed unit at the budget's
cut); the units holding renamed paths change, and so may the rest.

Thresholds and why they have their value
-----------------------------------------
Measured with `benchmarks/layering.py` on the Debian scenarios of
shared/data/layering (score = bytes downloaded / lower bound, budgets 5/10/20/40/94):

    curated                              5      10     20     40     94
    units (this module)                1.458  1.233  1.104  1.045  1.018
    units without paired paths         1.476  1.256  1.116  1.047  1.018
    size-first (no popularity data)    1.639  1.356  1.159  1.052  1.006
    random
    units (this module)                1.923  1.573  1.281  1.134  1.056
    units without paired paths         1.923  1.573  1.296  1.139  1.057
    size-first (no popularity data)    2.191  1.784  1.412  1.183  1.051

- `PLATFORM_SHARE` = 8: popularity is heavy-tailed. Within a factor of 8 of the C
  library are the few platforms whole ecosystems are built on; below it ordinary
  libraries, whose closures overlap each other, so their stacks vary with the other
  libraries an image has. Score at budget 20 (curated / random) by factor: 4 (C++
  runtime and Python only) 1.124 / 1.298; 6, 8 and 12 1.104-1.106 / 1.281-1.289;
  16 1.104 / 1.325; 32 1.120 / 1.432. The factor is relative to the image's own most
  popular path, so it needs no scan of the whole data and suits any package set.
- Popularity 2 for private paths is exact, not tuned: one referrer. Popularity 3 for
  paired paths is the one step further that pays: a paired path is in at most three
  different units, while as a small unit of its own it mostly lands in the rest,
  which differs in every image (GCC's sanitizer runtimes, referenced by its support
  library libgcc-12-dev and one other package, are the biggest case here). On 12
  resampled image sets of each kind (30 images of the base and 1-2 curated tools, or
  1-3 of the random scenario's packages, plus 10 repeats), pairing changes the score
  by -0.067 / -0.063 / -0.031 / -0.006 / -0.001 (curated kind) and 0.000 / +0.002 /
  -0.012 / -0.007 / -0.002 (random kind) at budgets 5 to 94. "No bigger than the
  referrer": a bigger path mostly gets a layer of its own anyway, and joining only
  multiplies its variants; pairing regardless of size loses 0.018 at budget 5
  (random), pairing only paths at most half the referrer's size gains less (1.464 /
  1.250 curated at budgets 5 / 10). Three referrers (popularity 4), with or without
  the size rule, lose 0.06 at every budget (curated) and 0.10-0.11 on the curated
  kind: in the other images one of the other two referrers is there, and both units
  differ. A paired path with both referrers in the image joining the bigger one gains
  0.006 / 0.020 at budgets 5 / 10 (random) but loses 0.006 / 0.007 at 40 / 94, and
  needs every referrer of a path, not only the first one the walk meets.
- Largest units first: even ranking units by their true number of images (known from
  the scenario) gained at most 0.03 (curated, budget 10) and lost 0.09 (random, budget
  5); the cut falls between different units in different images either way.
- Stacks are kept whole at every budget, even when the budget could give each of their
  paths a layer: splitting them when there is room makes the stacks differ between
  images (budget 94: 1.069 / 1.117 instead of 1.018 / 1.057), and so did using stacks
  only for images with more than twice as many paths as layers (1.045 / 1.132).
- `DEFAULT_BUDGET = 94` (in `layering`): Docker allows about 125 layers per image;
  users add their own layers on top and we add a customisation layer.

Measured and rejected (budgets 5 / 10 / 20, curated | random): content-defined chunks
over a canonical order, by own-closure size or popularity, beside the largest paths
(1.76 / 1.40 / 1.17 | 2.34 / 1.84 / 1.44); layers by tiers of own-closure size (same
range); chains of anchor closures, anchors chosen by size (1.74 / 1.42 / 1.27 |
2.37 / 1.95 / 1.62), by in-image referrers (1.65 / 1.41 / 1.28 | 2.36 / 2.00 / 1.80)
or among the roots (1.59 / 1.52 / 1.52 | 2.25 / 2.05 / 2.05); dominator-tree units
(1.84 / 1.57 / 1.37 | 2.35 / 1.98 / 1.66); groups by the set of the image's roots
above a path (1.66 / 1.38 / 1.16 | 2.22 / 1.81 / 1.44); power-of-two size thresholds
(1.69 / 1.42 / 1.21 | 2.35 / 1.92 / 1.50). Every rule that looks past a path's own
closure makes layers that differ between images. One trade-off was kept out: leaving
out of a stack the paths more popular than 1/64 of its platform (libraries shared well
beyond it) brings the 20-client score at budget 94 from 1.041 / 1.066 down to
1.005 / 1.010, but costs 0.10 / 0.15 at budget 5.

Limits, measured with oracles that know every image of the scenario: grouping paths
by the exact set of images containing them, keeping the largest groups, scores
1.232 / 1.055 / 1.009 | 1.683 / 1.287 / 1.084, keeping the groups that save the most
bytes (size x (images - 1)) 1.214 / 1.063 / 1.012 | 1.632 / 1.313 / 1.100; the units
without paired paths plus an oracle layer for the paths common to all images
1.287 / 1.156 / 1.072 | 1.718 / 1.452 / 1.234. In these Debian graphs the common base
(bash, coreutils, their libraries) is not popular (essential packages are not declared
as dependencies), so nothing inside one closure tells it apart; at budget 5 even the
oracles stay above 1.2 and 1.6. The best layerings found knowing every pull in advance
(`benchmarks/layering_limit.py`: consistent layers carved greedily, then local search)
score 1.142 / 1.043 / 1.008 | 1.548 / 1.265 / 1.081.

Small budgets (5 and 10), measured and rejected (budgets 5 / 10 / 20, curated | random;
measured before paired paths, on units scoring 1.476 / 1.256 / 1.116 |
1.923 / 1.573 / 1.296). At these budgets almost all the loss is shared bytes in the
rest, about a third of it the base. Findings:
- Only one layer holding the whole base would pay (the oracle above); the base's
  pieces as separate layers do not: weighting roots that other packages depend on
  (popularity >= 10) x2 to x16 so bash and coreutils get layers, 1.48-1.55 /
  1.25-1.27 | 1.92-2.07 / 1.56-1.58; the stacks of the roots with closures up to 20%
  of the image (claimed smallest first, each its own unit) 1.49 / 1.25 / 1.13 |
  1.95 / 1.59 / 1.33.
- One base layer needs the base roots told apart from the image's own, and no rule
  inside one closure does: small tools (jq, make, tmux, elvish, mruby ...) look like
  bash and coreutils by closure size, popularity and depth, and each image where one
  joins gets a base layer of its own. The closure of the roots with closures up to
  40 MB as a layer 1.42 / 1.29 / 1.27 | 2.06 / 1.82 / 1.55; up to 15% of the image
  (roots with references) 1.45 / 1.28 / 1.18 | 2.04 / 1.79 / 1.58; of the roots with
  popularity >= 20 1.81 / 1.76 / 1.66 | 1.86 / 1.55 / 1.33; the rest split into that
  part and the others 1.46-1.54 / 1.26-1.27 | 2.01-2.04 / 1.60.
- Ranking by expected saved bytes instead of size moves which units are cut, not how
  many shared bytes fit: size x popularity 1.70 / 1.43 / 1.20 | 2.28 / 1.82 / 1.53;
  x log2(1 + popularity) 1.46 / 1.27 / 1.12 | 1.89 / 1.59 / 1.29; x popularity^0.1,
  or power-of-two size classes ranked by popularity, gain at most 0.025 here and lose
  as often on resampled scenarios (noise); x the true number of images (oracle)
  1.46 / 1.23 / 1.11 | 2.02 / 1.57 / 1.31; platform stacks first 1.56 / 1.27 / 1.12
  | 2.18 / 1.62 / 1.30; the C library's alone first 1.48 / 1.26 / 1.12 |
  1.96 / 1.57 / 1.30.
- Coarser units vary between images and lose: all platform stacks in one layer
  (budgets 5 / 10) 1.48 / 1.29 | 2.00 / 1.72; the C library's stack taking the
  popular paths that need nothing else (>= 1/16 of its popularity) 1.47 / 1.25 / 1.12
  | 1.92 / 1.56 / 1.29 but 1.033 / 1.070 at budget 94, worse everywhere below 1/16;
  the largest units each taking their closure 1.64 / 1.50 / 1.47 | 1.97 / 1.72 / 1.63;
  `PLATFORM_SHARE` 2, 4, 16, 32 at budgets 5 / 10: 1.63 / 1.35, 1.56 / 1.31,
  1.48 / 1.26, 1.49 / 1.27 | 2.18 / 1.78, 2.05 / 1.63, 1.94 / 1.61, 2.01 / 1.69.
- Grouping as nixpkgs' auto-layer does (each path with the set of the nearest chosen
  paths above it, chosen largest first until the budget is full; it scores 1.770 /
  1.557 / 1.361 | 2.020 / 2.088 / 1.932 alone), applied to these units: chosen by size
  1.62 / 1.44 / 1.27 | 2.00 / 1.75 / 1.64, by popularity 1.83 / 1.68 / 1.56 |
  2.41 / 2.17 / 2.01, by size x log2(1 + popularity) 1.61 / 1.41 / 1.30 |
  1.98 / 1.70 / 1.63. A group named by several chosen paths changes with every other
  chosen path an image has.
The random scenario's target of 1.34 at budget 5 is below every layering found even
knowing every pull in advance (1.548, above).

Example
-------
Closure of `app` (popularity in brackets; the C library has the most)::

    python3   100 MB  [6000]  -> glibc, openssl, libffi
    openblas   40 MB     [2]  -> glibc            (only numpy references it)
    numpy      35 MB   [150]  -> python3, openblas
    glibc      30 MB [20000]
    openssl     6 MB   [900]  -> glibc
    curl        2 MB   [700]  -> glibc, openssl
    app         1 MB     [1]  -> numpy, curl
    libffi    0.2 MB   [300]  -> glibc

Platforms: glibc and python3 (at least 20000 / 8 = 2500). Units: [glibc]; python3's
stack [libffi, openssl, python3] (openssl goes with Python, though curl needs it too);
[numpy, openblas] (openblas is private to numpy); [curl]; [app]. Budget 4: the three
largest units get layers, in manifest order [glibc], [libffi, openssl, python3],
[numpy, openblas], and the rest is [app, curl]. An image of `python3` and `curl` gets
[glibc], [libffi, openssl, python3], [curl]: a client that pulled `app` downloads 2 MB.
Without popularity data (size-first) `app` gets [python3], [openblas], [numpy] and a
rest with glibc and openssl, the second image [glibc], [openssl], [python3] and
[curl, libffi], and the client downloads 38.2 MB again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from layering.graph import PathInfo, validate_budget, walk
from layering.stacks import groups, popularity_counts


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
    referrers, found_by = walk(graph, roots)
    paths = sorted(referrers)
    if budget == 1:
        return [paths]
    counts = popularity_counts(paths, popularity)
    multi, reps = groups(graph, referrers, found_by, counts)
    # Each unit is named by its first path; `firsts` is sorted, so the stable sorts below
    # break ties by path. One-path units are not built until they become layers.
    if multi:
        inside = {p for unit in multi.values() for p in unit[1:]}
        firsts = [p for p in paths if p not in inside]
        unit_size = {first: sum(graph[p].nar_size for p in unit) for first, unit in multi.items()}
        sizes = [unit_size[p] if p in unit_size else graph[p].nar_size for p in firsts]
    else:
        firsts = paths
        sizes = [graph[p].nar_size for p in paths]

    def shared_first(i: int) -> tuple[int, int, str]:
        # More referrers (popularity data when given, else inside the image) first.
        rep = reps.get(firsts[i], firsts[i])
        score = referrers[rep] if popularity is None else counts.get(rep, referrers[rep])
        return (-score, -sizes[i], firsts[i])

    def unit(i: int) -> list[str]:
        return multi.get(firsts[i]) or [firsts[i]]

    if len(firsts) <= budget:
        return [unit(i) for i in sorted(range(len(firsts)), key=shared_first)]
    # The largest units get their own layers, the others share the last one.
    smaller = [-size for size in sizes]
    by_size = sorted(range(len(firsts)), key=smaller.__getitem__)
    kept = [unit(i) for i in sorted(by_size[: budget - 1], key=shared_first)]
    in_kept = {p for layer in kept for p in layer}
    return [*kept, [p for p in paths if p not in in_kept]]
