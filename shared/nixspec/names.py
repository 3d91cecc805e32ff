"""Image names to package lists: Nixery's naming rules, with its flaws fixed.

Every path component of an image name is a package (``shell/git/htop`` ->
``git``, ``htop``), except the meta-packages:

* ``shell`` adds ``bashInteractive``, ``coreutils``, ``moreutils`` and
  ``nano`` (and with ``bashInteractive`` present the image runs ``bash``);
* ``arm64`` builds for ``aarch64-linux`` (image architecture ``arm64``)
  instead of ``x86_64-linux`` / ``amd64``.

Upstream honours meta-packages only as a leading run of components; here they
count anywhere in the name. ``cacert`` and ``iana-etc`` are always added (TLS
and ``/etc/services`` just work). The list is de-duplicated case-insensitively
and sorted, so ``shell/bashinteractive`` is ``shell`` and ``htop/git`` is
``git/htop``: the same image, the same cache entry.

A component is an attribute path: ``python3packages.numpy`` names
``python3Packages.numpy``. Registry names are lowercase, so the Nix side
(:mod:`nixspec.nix`) resolves every segment case-insensitively, and a segment
starting with a digit also matches its ``_``-prefixed attribute
(``1password`` -> ``_1password``), the nixpkgs convention.

Names are checked against the distribution spec's name grammar and a length
limit before anything else, and each package against a strict pattern; an
invalid name is ``NAME_INVALID`` (400) with every problem listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ocimodel.errors import ErrorCode, RegistryError

# The distribution spec's repository name grammar.
_NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# One attribute-path segment as it may reach Nix (as JSON data, never code).
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+-]*")

DEFAULT_MAX_NAME_LENGTH = 255  # what distribution allows for a repository name
DEFAULT_MAX_PACKAGES = 50  # keeps one pull from building half of nixpkgs
ALWAYS_INCLUDED = ("cacert", "iana-etc")
SHELL_PACKAGES = ("bashInteractive", "coreutils", "moreutils", "nano")


class Arch(Enum):
    """A Nix system and the image architecture it maps to."""

    AMD64 = ("x86_64-linux", "amd64")
    ARM64 = ("aarch64-linux", "arm64")

    @property
    def nix_system(self) -> str:
        return self.value[0]

    @property
    def oci_arch(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class ParsedName:
    """What an image name asks for."""

    packages: tuple[str, ...]
    arch: Arch


def validate_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise RegistryError(
            ErrorCode.MANIFEST_UNKNOWN,
            "invalid tag: up to 128 characters of [A-Za-z0-9_.-], not starting with . or -",
            detail={"tag": tag[:200]},
        )
    return tag


def validate_name(name: str, max_length: int = DEFAULT_MAX_NAME_LENGTH) -> str:
    """Check ``name`` against the spec's grammar and the length limit."""
    problem = ""
    if len(name) > max_length:
        problem = (
            f"name is {len(name)} characters, the limit is {max_length} (NIXERY_MAX_NAME_LENGTH)"
        )
    elif not _NAME.fullmatch(name):
        problem = (
            "name must be lowercase components of [a-z0-9] joined by '.', '_', '__' or '-', "
            "separated by '/'"
        )
    if problem:
        raise RegistryError(ErrorCode.NAME_INVALID, problem, detail={"name": name[:300]})
    return name


def _package_problem(component: str) -> str | None:
    segments = component.split(".")
    if all(_SEGMENT.fullmatch(s) for s in segments):
        return None
    return f"{component!r} is not an attribute path (segments of letters, digits, _ + -)"


def parse_name(
    name: str,
    *,
    max_length: int = DEFAULT_MAX_NAME_LENGTH,
    max_packages: int = DEFAULT_MAX_PACKAGES,
) -> ParsedName:
    """The packages and architecture an image name asks for.

    Raises ``RegistryError(NAME_INVALID)`` naming every problem found.
    """
    problems: list[str] = []
    if len(name) > max_length:
        problems.append(
            f"name is {len(name)} characters, the limit is {max_length} (NIXERY_MAX_NAME_LENGTH)"
        )
    elif not _NAME.fullmatch(name):
        problems.append(
            "name must be lowercase components of [a-z0-9] joined by '.', '_', '__' or '-', "
            "separated by '/'"
        )
    if problems:
        raise RegistryError(
            ErrorCode.NAME_INVALID, "; ".join(problems), detail={"name": name[:300]}
        )

    arch = Arch.AMD64
    wanted: list[str] = []
    for component in name.split("/"):
        if component == "shell":
            wanted.extend(SHELL_PACKAGES)
        elif component == "arm64":
            arch = Arch.ARM64
        else:
            problem = _package_problem(component)
            if problem:
                problems.append(problem)
            wanted.append(component)
    if problems:
        raise RegistryError(ErrorCode.NAME_INVALID, "; ".join(problems), detail={"name": name})
    packages = normalise_packages([*wanted, *ALWAYS_INCLUDED])
    if len(packages) > max_packages:
        raise RegistryError(
            ErrorCode.NAME_INVALID,
            f"image asks for {len(packages)} packages, the limit is {max_packages} "
            "(NIXERY_MAX_PACKAGES)",
            detail={"name": name},
        )
    return ParsedName(packages=packages, arch=arch)


def normalise_packages(packages: list[str]) -> tuple[str, ...]:
    """De-duplicate case-insensitively and sort.

    Of spellings that differ only in case the one with capitals wins: it is
    the meta-package's exact attribute name (``bashInteractive``), while a
    lowercase spelling can only have come from a registry name.
    """
    chosen: dict[str, str] = {}
    for package in packages:
        key = package.lower()
        current = chosen.get(key)
        if current is None or (current == key and package != key):
            chosen[key] = package
    return tuple(chosen[key] for key in sorted(chosen))
