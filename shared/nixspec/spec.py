"""The immutable build spec: what one image is, and its cache key.

An :class:`ImageSpec` is everything a builder needs to produce an image and
nothing else: the packages, the architecture and the pinned package source.
It crosses process boundaries as JSON (the manifest function hands it to the
builder job in an environment variable), so it round-trips through
:meth:`ImageSpec.to_json` / :meth:`ImageSpec.from_json` exactly.

The cache key is a sha256 over a canonical encoding of exactly the inputs
that change the image's bytes: packages, architecture, source kind and source
revision. Upstream Nixery's key (``sha1(join(packages, "") + tag)``) omits the
architecture and has no separators, so ``arm64`` and ``amd64`` collide and
``["ab", "c"]`` equals ``["a", "bc"]``; a JSON list cannot collide that way.
The image name and tag are not part of the key: ``shell/hello`` and
``hello/shell`` are the same image, and a tag only matters through the
revision it pins (git sources).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from nixspec.names import Arch

SPEC_VERSION = 1  # bump when the builder's output for the same inputs changes


class SourceKind(StrEnum):
    PATH = "path"  # NIXERY_PKGS_PATH: a local package set
    CHANNEL = "channel"  # NIXERY_CHANNEL: a nixpkgs channel name or commit
    GIT = "git"  # NIXERY_PKGS_REPO: a git repository, tag = ref or commit


@dataclass(frozen=True)
class PackageSource:
    """A package source pinned to a revision.

    ``location`` is the path, channel name or git URL as configured;
    ``revision`` pins the content: the tree hash of a path, the commit a
    channel or git ref resolved to (or the ref itself for git when it could
    not be resolved up front, in which case the builder's fetch pins it).
    """

    kind: SourceKind
    location: str
    revision: str


@dataclass(frozen=True)
class ImageSpec:
    name: str
    tag: str
    packages: tuple[str, ...]
    arch: Arch
    source: PackageSource

    @property
    def runs_shell(self) -> bool:
        return any(p.lower() == "bashinteractive" for p in self.packages)

    @property
    def cache_key(self) -> str:
        canonical = json.dumps(
            {
                "v": SPEC_VERSION,
                "packages": list(self.packages),
                "system": self.arch.nix_system,
                "source": [str(self.source.kind), self.source.location, self.source.revision],
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tag": self.tag,
            "packages": list(self.packages),
            "arch": self.arch.name,
            "source": {
                "kind": str(self.source.kind),
                "location": self.source.location,
                "revision": self.source.revision,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageSpec:
        source = data["source"]
        return cls(
            name=str(data["name"]),
            tag=str(data["tag"]),
            packages=tuple(str(p) for p in data["packages"]),
            arch=Arch[data["arch"]],
            source=PackageSource(
                kind=SourceKind(source["kind"]),
                location=str(source["location"]),
                revision=str(source["revision"]),
            ),
        )

    @classmethod
    def from_json(cls, text: str) -> ImageSpec:
        return cls.from_dict(json.loads(text))
