"""Counting references into Nixery's popularity data, and the top packages.

:func:`popularity` is Nixery's rule exactly: one per reference of every
listed path to the referenced ``name-version`` (self-references included),
then every entry counted once dropped. :func:`top_packages` turns the
result into a prebuild list: the channel's own paths ranked by their count,
each as a lowercase image name (``builtins.parseDrvName``'s package name,
which is the attribute name for most of nixpkgs; names that are not valid
image names are left out, and attribute names that differ from the package
name, ``bashInteractive`` for ``bash-interactive``, fail in the prebuild
with a clear reason rather than being guessed).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from popcount.narinfo import StorePath, package_name

#: One path component of an image name (the distribution spec's grammar).
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")


def popularity(referrers: Iterable[Sequence[StorePath]]) -> dict[str, int]:
    """``{"name-version": count}`` from each listed path's references."""
    counts: Counter[str] = Counter()
    for refs in referrers:
        counts.update(ref.name for ref in refs)
    # Nixery drops the paths nobody else references (a count of one is
    # usually just the path's reference to itself).
    return {name: count for name, count in sorted(counts.items()) if count > 1}


def top_packages(
    listed: Sequence[StorePath], counts: Mapping[str, int], limit: int
) -> list[tuple[str, int]]:
    """The ``limit`` most popular of the channel's own packages, as
    (image name, count), most popular first (ties by name)."""
    best: dict[str, int] = {}
    for path in listed:
        image = package_name(path.name).lower()
        if not _COMPONENT.fullmatch(image):
            continue
        best[image] = max(best.get(image, 0), counts.get(path.name, 0))
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]
