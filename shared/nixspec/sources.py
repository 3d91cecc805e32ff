"""Pinning the configured package source to a revision, without Nix.

A cache hit must be answered without touching Nix, so the manifest function
needs the cache key, and the key needs a pinned revision. This module turns
the configured source plus the request's tag into a :class:`PackageSource`:

* path (``NIXERY_PKGS_PATH``): a signature of the tree (every file's relative
  path, size and modification time), so editing the package set makes new
  images while an unchanged one is served from cache. Statting is cheap even
  for a nixpkgs checkout; the tag is ignored.
* channel (``NIXERY_CHANNEL``): a 40-hex value is a commit already; a channel
  name is resolved through ``<channel base>/<name>/git-revision`` (what
  channels.nixos.org publishes). The tag is ignored.
* git (``NIXERY_PKGS_REPO``): the tag is a ref (``latest`` = the default
  branch), a 40-hex tag is a commit; refs are resolved with
  ``git ls-remote``.

Resolutions are cached for a short TTL (``NIXERY_SOURCE_TTL_S``) per process so
a hot path costs no network call, and a channel update is picked up within
that time. Failures to resolve are ``UNAVAILABLE`` (503): nothing can be built
or looked up without knowing what the source is.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nixspec.spec import PackageSource, SourceKind
from ocimodel.errors import ErrorCode, RegistryError

COMMIT = re.compile(r"[0-9a-f]{40}")
DEFAULT_CHANNEL_BASE = "https://channels.nixos.org"
_IGNORED_DIRS = frozenset({".git", "__pycache__", "result"})


@dataclass(frozen=True)
class ConfiguredSource:
    """The package source as configured, before pinning."""

    kind: SourceKind
    location: str


def tree_signature(root: Path) -> str:
    """sha256 over (relative path, size, mtime_ns, mode) of every file below
    ``root``, in sorted order; symlinks contribute their target, and links to
    directories are followed (once: a link cycle is not walked twice)."""
    digest = hashlib.sha256()
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS)
        entries = sorted(
            [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]
        )
        for name in entries:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            extra = os.readlink(full) if os.path.islink(full) else ""
            digest.update(
                f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\0{extra}\n".encode()
            )
    return digest.hexdigest()


def fetch_text(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        data: bytes = response.read(4096)
    return data.decode().strip()


def git_ls_remote(url: str, ref: str, timeout_s: float) -> str:
    """The commit ``ref`` points at in the repository at ``url``."""
    # Ask for the peeled form too: for an annotated tag, `ref^{}` names the
    # commit while `ref` names the tag object (which fetchGit cannot use).
    out = subprocess.run(
        ["git", "ls-remote", "--", url, ref, f"{ref}^{{}}"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    ).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, name = line.partition("\t")
        found[name] = commit
    for name in (f"refs/tags/{ref}^{{}}", ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if name in found:
            return found[name]
    raise LookupError(f"ref {ref!r} not found")


class SourceResolver:
    """Pins a configured source for a tag, caching results for ``ttl_s``."""

    def __init__(
        self,
        source: ConfiguredSource,
        *,
        ttl_s: float = 10.0,
        channel_base: str = DEFAULT_CHANNEL_BASE,
        fetch: Callable[[str, float], str] = fetch_text,
        ls_remote: Callable[[str, str, float], str] = git_ls_remote,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._ttl_s = ttl_s
        self._channel_base = channel_base.rstrip("/")
        self._fetch = fetch
        self._ls_remote = ls_remote
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def resolve(self, tag: str) -> PackageSource:
        kind, location = self.source.kind, self.source.location
        if kind is SourceKind.GIT:
            revision = tag if COMMIT.fullmatch(tag) else self._cached(tag, self._git_commit)
        elif kind is SourceKind.CHANNEL:
            if COMMIT.fullmatch(location):
                revision = location
            else:
                revision = self._cached("", self._channel_commit)
        else:
            revision = self._cached("", lambda _: tree_signature(Path(location)))
        return PackageSource(kind, location, revision)

    def _cached(self, key: str, compute: Callable[[str], str]) -> str:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > now:
                return hit[1]
        value = compute(key)  # outside the lock: a slow remote must not serialise requests
        with self._lock:
            self._cache[key] = (now + self._ttl_s, value)
        return value

    def _channel_commit(self, _: str) -> str:
        url = f"{self._channel_base}/{self.source.location}/git-revision"
        try:
            commit = self._fetch(url, 10.0)
        except OSError as exc:
            raise RegistryError(
                ErrorCode.UNAVAILABLE, f"cannot resolve channel {self.source.location!r}: {exc}"
            ) from exc
        if not COMMIT.fullmatch(commit):
            raise RegistryError(
                ErrorCode.UNAVAILABLE,
                f"channel {self.source.location!r} resolved to {commit[:60]!r}, not a commit",
            )
        return commit

    def _git_commit(self, tag: str) -> str:
        ref = "HEAD" if tag == "latest" else tag
        try:
            return self._ls_remote(self.source.location, ref, 30.0)
        except LookupError as exc:
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN, f"no branch or tag {tag!r} in the package repository"
            ) from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise RegistryError(
                ErrorCode.UNAVAILABLE, f"cannot resolve ref {tag!r} of the package repository"
            ) from exc
