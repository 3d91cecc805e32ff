"""The customisation layer: the packages linked into ``/``, plus the basics.

Store paths alone make a correct but unusable image: ``hello`` lives at
``/nix/store/<hash>-hello-2.12.1/bin/hello``. This layer merges the packages'
top-level directories the way a Nix profile (``buildEnv``) does:

* a directory present in one package only is a symlink to it
  (``/share/nano -> /nix/store/...-nano/share/nano``);
* a directory present in several packages is a real directory whose entries
  are merged recursively; where two packages provide the same file, the
  first package in the image's (sorted) package order wins, deterministically;
* top-level directories (``/bin``, ``/etc``, ``/lib``, ``/share``, ...) are
  always real directories, so a container runtime can add ``/etc/hosts`` or
  ``/etc/resolv.conf`` next to the packages' files;
* ``/usr/bin/env`` links to the merged ``/bin/env`` when a package provides
  one (coreutils): ``#!/usr/bin/env`` scripts run (upstream issue 109);
* ``/tmp`` exists with mode 1777.

``nix-support`` directories are build metadata and are left out. Reading the
packages' directory listings is the only I/O; :func:`plan_entries` takes a
listing function so the merge rule is tested without a store.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

from builder_job.tarlayer import Entry

SKIPPED = frozenset({"nix-support"})
LAYER_VERSION = "customisation-v1"  # part of the cache key: bump when the rule changes

# Listing: (directory) -> sorted [(name, is_dir)], following symlinks to decide is_dir.
Listing = Callable[[str], list[tuple[str, bool]]]


def list_dir(path: str) -> list[tuple[str, bool]]:
    try:
        names = sorted(os.listdir(path), key=os.fsencode)
    except (NotADirectoryError, FileNotFoundError):
        return []
    return [(name, os.path.isdir(os.path.join(path, name))) for name in names]


def _merge(
    sources: Sequence[str], rel: str, depth: int, listing: Listing, out: list[Entry]
) -> None:
    """Entries for the merged directory ``rel`` made of ``sources`` (absolute
    directories, in priority order)."""
    children: dict[str, list[tuple[str, bool]]] = {}
    for source in sources:
        for name, is_dir in listing(source):
            if depth == 0 and name in SKIPPED:
                continue
            children.setdefault(name, []).append((os.path.join(source, name), is_dir))
    for name in sorted(children, key=os.fsencode):
        providers = children[name]
        child_rel = f"{rel}/{name}" if rel else name
        dirs = [path for path, is_dir in providers if is_dir]
        # Top level: always a real directory (a stray file of the same name in
        # another package is dropped). Below: real only when several packages
        # provide the directory; a single provider is linked as a whole.
        if dirs and (depth == 0 or (len(dirs) > 1 and len(dirs) == len(providers))):
            out.append(Entry(child_rel, "dir", 0o755))
            _merge(dirs, child_rel, depth + 1, listing, out)
        else:
            out.append(Entry(child_rel, "symlink", target=providers[0][0]))


def plan_entries(package_paths: Sequence[str], listing: Listing = list_dir) -> list[Entry]:
    """Every entry of the customisation layer for these output paths, in
    priority order."""
    entries: list[Entry] = []
    _merge(list(package_paths), "", 0, listing, entries)
    names = {e.name: e for e in entries}
    env = names.get("bin/env")
    # Never add below a directory that is a link into a package (that would
    # write into the store path).
    usr_is_ours = all(names.get(d, Entry(d, "dir")).kind == "dir" for d in ("usr", "usr/bin"))
    if env is not None and "usr/bin/env" not in names and usr_is_ours:
        for directory in ("usr", "usr/bin"):
            if directory not in names:
                entries.append(Entry(directory, "dir", 0o755))
        entries.append(Entry("usr/bin/env", "symlink", target=env.target))
    tmp = names.get("tmp")
    if tmp is None:
        entries.append(Entry("tmp", "dir", 0o1777))
    elif tmp.kind == "dir":  # a package ships /tmp: it must still be world-writable
        entries[entries.index(tmp)] = Entry("tmp", "dir", 0o1777)
    return entries


def layer_key(package_paths: Sequence[str]) -> str:
    """The layer cache key: store paths are immutable, so the ordered output
    paths determine the layer's content."""
    text = "\n".join([LAYER_VERSION, *package_paths])
    return hashlib.sha256(text.encode()).hexdigest()
