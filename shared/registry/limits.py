"""Abuse limits: how much one registry lets anyone build.

A public registry builds whatever anyone names, so every cost is bounded.
Each limit is a setting with a default that a small deployment can live
with, is checked as early as it can be, and when exceeded answers an error
that names the setting:

=================  ==================================  ======================  ===============
limit              setting (default)                   checked                 answer
=================  ==================================  ======================  ===============
name length        ``NIXERY_MAX_NAME_LENGTH`` (255)    manifest function       400 NAME_INVALID
packages / image   ``NIXERY_MAX_PACKAGES`` (50)        manifest function       400 NAME_INVALID
allow / deny list  ``NIXERY_ALLOW_PACKAGES`` /         manifest function (the  403 DENIED
                   ``NIXERY_DENY_PACKAGES`` (none)     names, before any Nix
                                                       call) and builder (the
                                                       resolved attributes)
unfree packages    ``NIXERY_ALLOW_UNFREE`` (false)     Nix (nixpkgs' own       404
                                                       ``allowUnfree``)        MANIFEST_UNKNOWN
builds / instance  ``NIXERY_MAX_BUILDS_PER_INSTANCE``  manifest function,      429
                   (8)                                 before a claim          TOOMANYREQUESTS
builds in total    ``NIXERY_MAX_BUILDS`` (32)          manifest function, a    429
                                                       count of live leases    TOOMANYREQUESTS
Nix time           ``NIX_TIMEOUT`` (60 s)              builder: the Nix tree   503 UNAVAILABLE
                                                       is killed
build time         ``NIXERY_BUILD_TIMEOUT_S`` (3600)   builder: Nix's deadline 503 UNAVAILABLE
                                                       and between stages and
                                                       layers
closure size       ``NIXERY_MAX_CLOSURE_MB`` (10240)   builder, after          403 DENIED
                                                       ``path-info``, before
                                                       packing
=================  ==================================  ======================  ===============

Every message names its setting; 429s carry ``Retry-After``; the unfree
answer is Nix's own message ("has an unfree license").

Build concurrency
    Only *starting* a build counts: a pull that would follow a build already
    running (the same image) is never refused. The per-instance limit counts
    the builds this process (a manifest function instance, or one worker of
    ``nixery serve``) started and whose lease is still live. The total
    counts every build with a live lease in the metadata store (SQLite: one
    indexed ``COUNT``; Firestore: a range query on ``lease_expires_at``,
    which only recent builds match). The count and the claim are two steps,
    so pulls of *different* cold images in the same instant can start a few
    builds past the limit; it bounds cost, it is not a lock. Prebuilds
    (``nixery prebuild``, the trigger) are an operator's and are not limited.
    On Cloud Run, the job's ``max_retries`` and task timeout bound each
    execution, not their number: this count is what does.

Package patterns
    Comma-separated shell-style patterns (``fnmatch``: ``*``, ``?``, ``[...]``)
    on attribute paths, matched ignoring case: ``hello``, ``python3packages.*``.
    A deny pattern always wins; with an allow-list, every package must match
    one of its patterns, except the ones the registry adds to every image
    (``cacert``, ``iana-etc``). Meta-packages count as what they add:
    ``shell`` needs ``bashinteractive``, ``coreutils``, ``moreutils`` and
    ``nano`` allowed.

Build time
    ``NIXERY_BUILD_TIMEOUT_S`` bounds one build from the builder's start:
    Nix runs under the earlier of it and ``NIX_TIMEOUT``; packing checks it
    before each layer, so a layer being written finishes first (its size is
    bounded by the closure limit). A timed-out build is a 503 remembered for
    ``NIXERY_FAILURE_TTL_S``: what Nix built stays in its store, so a later
    attempt goes on from there.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from metastore.records import BuildRecord
from ocimodel.errors import ErrorCode, RegistryError

DEFAULT_MAX_BUILDS = 32
DEFAULT_MAX_BUILDS_PER_INSTANCE = 8
DEFAULT_BUILD_TIMEOUT_S = 3600.0
DEFAULT_MAX_CLOSURE_MB = 10 * 1024  # the largest nixpkgs images (TeX Live) are a few GB
RETRY_AFTER_S = 30  # a build takes minutes; come back in half of one
#: Added to every image by the registry itself: never refused by an allow-list.
ALWAYS_ALLOWED = ("cacert", "iana-etc")


class LimitExceeded(Exception):
    """A build that would pass a limit (raised in the builder, recorded as
    the build's error, answered with ``code``)."""

    def __init__(self, code: ErrorCode, message: str, detail: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.detail = dict(detail)


def _patterns(raw: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in raw.split(",") if p.strip())


@dataclass(frozen=True)
class Limits:
    """The limits of :mod:`registry.limits` that are not about names."""

    max_builds: int = DEFAULT_MAX_BUILDS
    max_builds_per_instance: int = DEFAULT_MAX_BUILDS_PER_INSTANCE
    build_timeout_s: float = DEFAULT_BUILD_TIMEOUT_S
    max_closure_mb: int = DEFAULT_MAX_CLOSURE_MB
    allow_packages: tuple[str, ...] = ()
    deny_packages: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str], problems: list[str]) -> Limits:
        """Read the settings; append a line to ``problems`` per bad value."""

        def number(name: str, default: float, kind: type[int] | type[float]) -> Any:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError:
                value = 0
            if not 0 < value < float("inf"):  # refuses NaN too
                what = "a positive integer" if kind is int else "a number of seconds"
                problems.append(f"{name}={raw!r} is not {what}")
                return default
            return value

        return cls(
            max_builds=number("NIXERY_MAX_BUILDS", DEFAULT_MAX_BUILDS, int),
            max_builds_per_instance=number(
                "NIXERY_MAX_BUILDS_PER_INSTANCE", DEFAULT_MAX_BUILDS_PER_INSTANCE, int
            ),
            build_timeout_s=number("NIXERY_BUILD_TIMEOUT_S", DEFAULT_BUILD_TIMEOUT_S, float),
            max_closure_mb=number("NIXERY_MAX_CLOSURE_MB", DEFAULT_MAX_CLOSURE_MB, int),
            allow_packages=_patterns(env.get("NIXERY_ALLOW_PACKAGES", "")),
            deny_packages=_patterns(env.get("NIXERY_DENY_PACKAGES", "")),
        )

    # -- packages -----------------------------------------------------------
    def refused(self, packages: Iterable[str]) -> dict[str, str]:
        """Package -> the setting refusing it (empty: all allowed)."""
        refused: dict[str, str] = {}
        for package in packages:
            lowered = package.lower()
            if any(fnmatch.fnmatchcase(lowered, p) for p in self.deny_packages):
                refused[package] = "NIXERY_DENY_PACKAGES"
            elif (
                self.allow_packages
                and lowered not in ALWAYS_ALLOWED
                and not any(fnmatch.fnmatchcase(lowered, p) for p in self.allow_packages)
            ):
                refused[package] = "NIXERY_ALLOW_PACKAGES"
        return refused

    def package_problem(self, packages: Iterable[str]) -> tuple[str, dict[str, Any]] | None:
        refused = self.refused(packages)
        if not refused:
            return None
        listed = ", ".join(f"{p} ({setting})" for p, setting in sorted(refused.items()))
        message = f"packages not allowed on this registry: {listed}"
        return message, {"refused": [{"package": p, "limit": s} for p, s in refused.items()]}

    def check_packages(self, packages: Iterable[str]) -> None:
        """Raise 403 ``DENIED`` naming every refused package and its setting."""
        problem = self.package_problem(packages)
        if problem is not None:
            raise RegistryError(ErrorCode.DENIED, problem[0], detail=problem[1])

    # -- closure ------------------------------------------------------------
    def check_closure(self, size_bytes: int) -> None:
        limit = self.max_closure_mb * 1024 * 1024
        if size_bytes > limit:
            raise LimitExceeded(
                ErrorCode.DENIED,
                f"the image's closure is {size_bytes / 2**20:.0f} MB, the limit is "
                f"{self.max_closure_mb} MB (NIXERY_MAX_CLOSURE_MB)",
                {"limit": "NIXERY_MAX_CLOSURE_MB", "closure_bytes": size_bytes},
            )


def build_timeout(limit_s: float) -> LimitExceeded:
    return LimitExceeded(
        ErrorCode.UNAVAILABLE,
        f"the build took longer than NIXERY_BUILD_TIMEOUT_S of {limit_s:g}s and was stopped",
        {"limit": "NIXERY_BUILD_TIMEOUT_S"},
    )


def too_many_builds(setting: str, active: int, limit: int, where: str) -> RegistryError:
    return RegistryError(
        ErrorCode.TOOMANYREQUESTS,
        f"{active} builds are running {where}, the limit is {limit} ({setting}); retry shortly",
        detail={"limit": setting, "active": active, "max": limit},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


@runtime_checkable
class BuildCounter(Protocol):
    """What the concurrency limits need from a metadata store (both adapters
    have it; a store without it is not limited)."""

    def active_builds(self, now: float) -> int:
        """Builds pending or running whose lease is live at ``now``."""
        ...

    def current_build(self, cache_key: str) -> BuildRecord | None:
        """The key's latest build (what a claim would decide on)."""
        ...


class _Builds(Protocol):
    def get_build(self, build_id: str) -> BuildRecord | None: ...


@dataclass
class InstanceBuilds:
    """The builds this process started whose leases may still be live."""

    _ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, build_id: str) -> None:
        with self._lock:
            self._ids.add(build_id)

    def active(self, metadata: _Builds, now: float, enough: int) -> int:
        """How many are live; the records are read only once there are
        ``enough`` to matter (then finished or dead ones are forgotten)."""
        with self._lock:
            ids = set(self._ids)
        if len(ids) < enough:
            return len(ids)
        gone = set()
        for build_id in ids:
            build = metadata.get_build(build_id)
            if build is None or not build.lease_valid(now):
                gone.add(build_id)
        with self._lock:
            self._ids -= gone
        return len(ids - gone)
