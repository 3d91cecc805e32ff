"""A small Nix channel and binary cache made from the test package set's REAL closure.

:func:`make_channel` builds the given ``tests/pkgs`` attributes, reads their
closure with ``nix path-info --json --recursive`` and publishes, on a real
local HTTP server (:mod:`tests.support.static_http`), what
``channels.nixos.org`` and ``cache.nixos.org`` publish for a channel:

- ``/<channel>``: a 302 to the release, ``/releases/<channel>.<rev>``
- ``/releases/<channel>.<rev>/git-revision`` and ``store-paths.xz`` (the
  listed attributes' outputs, xz-compressed, one path per line)
- ``/cache/nix-cache-info`` and ``/cache/<hash>.narinfo`` for every path of
  the closure, with its real ``References:``

``missing`` adds listed paths the cache does not have (as unfree or failed
packages are missing from cache.nixos.org).
"""

from __future__ import annotations

import json
import lzma
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.static_http import Answer, StaticServer, start_static_server

NIX = ("nix", "--extra-experimental-features", "nix-command")
REVISION = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Channel:
    server: StaticServer
    name: str
    listed: dict[str, str]  # attribute -> store path
    closure: dict[str, list[str]]  # store path -> referenced store paths

    @property
    def base(self) -> str:
        return self.server.url

    @property
    def cache(self) -> str:
        return f"{self.server.url}/cache"

    def narinfo_path(self, store_path: str) -> str:
        return f"/cache/{Path(store_path).name[:32]}.narinfo"

    def stop(self) -> None:
        self.server.stop()


def narinfo(info: dict[str, object]) -> str:
    path = str(info["path"])
    refs = " ".join(Path(str(r)).name for r in info.get("references", []))  # type: ignore[attr-defined]
    lines = [
        f"StorePath: {path}",
        f"URL: nar/{Path(path).name[:32]}.nar",
        "Compression: none",
        f"NarHash: {info['narHash']}",
        f"NarSize: {info['narSize']}",
        f"References: {refs}",
    ]
    if info.get("deriver"):
        lines.append(f"Deriver: {Path(str(info['deriver'])).name}")
    return "\n".join(lines) + "\n"


def make_channel(
    pkgs: Path, attributes: list[str], *, name: str = "nixos-test", missing: Sequence[str] = ()
) -> Channel:
    listed = {}
    for attribute in attributes:
        out = subprocess.run(
            ["nix-build", str(pkgs), "-A", attribute, "--no-out-link"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        listed[attribute] = out[0]
    infos = json.loads(
        subprocess.run(
            [*NIX, "path-info", "--json", "--recursive", *listed.values()],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    release = f"/releases/{name}.{REVISION[:7]}"
    routes = {
        f"/{name}": Answer(b"", 302, (("Location", release),)),
        f"{release}/git-revision": Answer(REVISION.encode()),
        f"{release}/store-paths.xz": Answer(
            lzma.compress(("\n".join([*listed.values(), *missing]) + "\n").encode())
        ),
        "/cache/nix-cache-info": Answer(b"StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"),
    }
    closure = {}
    for info in infos:
        routes[f"/cache/{Path(info['path']).name[:32]}.narinfo"] = Answer(narinfo(info).encode())
        closure[info["path"]] = list(info.get("references", []))
    server = start_static_server(routes)
    return Channel(server, name, listed, closure)
