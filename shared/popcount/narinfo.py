"""Store path names and narinfo files: pure parsing.

A store path is ``/nix/store/<32-char hash>-<name>``; its narinfo (the
binary cache's description of it) is ``Key: value`` lines, among them
``StorePath:`` and ``References:`` (space-separated ``<hash>-<name>``
basenames, possibly empty). Package names split like Nix's
``builtins.parseDrvName``: the version starts at the first ``-`` that is
not followed by a letter (``foo-bar-2.0`` is ``foo-bar`` at ``2.0``;
``python3.11-urllib3-2.0.7`` is ``python3.11-urllib3``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STORE_DIR = "/nix/store"
_BASENAME = re.compile(r"(?P<hash>[0-9a-df-np-sv-z]{32})-(?P<name>[^/\s]+)")


@dataclass(frozen=True)
class StorePath:
    hash: str
    name: str  # name-version(-output): the key of the popularity data

    @property
    def path(self) -> str:
        return f"{STORE_DIR}/{self.hash}-{self.name}"


def parse_store_path(text: str) -> StorePath | None:
    """``/nix/store/<hash>-<name>`` or a bare ``<hash>-<name>``; None otherwise."""
    text = text.strip()
    if text.startswith(STORE_DIR + "/"):
        text = text[len(STORE_DIR) + 1 :]
    match = _BASENAME.fullmatch(text)
    return StorePath(match["hash"], match["name"]) if match else None


def parse_store_paths(text: str) -> list[StorePath]:
    """A ``store-paths`` listing: one path per line; blanks and junk skipped."""
    paths = (parse_store_path(line) for line in text.splitlines())
    return [p for p in paths if p is not None]


def references(narinfo: str) -> list[StorePath]:
    """The ``References:`` of a narinfo (empty when it has none).

    Raises ValueError when the text is no narinfo at all (no ``StorePath:``),
    e.g. an error page served with status 200.
    """
    fields: dict[str, str] = {}
    for line in narinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    if "StorePath" not in fields:
        raise ValueError("not a narinfo: no StorePath line")
    refs = (parse_store_path(word) for word in fields.get("References", "").split())
    return [r for r in refs if r is not None]


def package_name(name: str) -> str:
    """The ``pname`` of a ``name-version``, by ``builtins.parseDrvName``'s rule."""
    for index, char in enumerate(name):
        if char == "-" and index + 1 < len(name) and not name[index + 1].isalpha():
            return name[:index]
    return name
