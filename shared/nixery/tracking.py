"""What each image of a prebuild is doing, learnt without asking anyone.

The builds are followed by :class:`registry.builds.BuildCoordinator`, which
reads build records from the metadata store. :class:`ObservedMetadata` wraps
the store and hands every :class:`BuildRecord` that passes through it to the
:class:`Tracker`, so the progress display knows each image's build id and
state (pending, running) at no extra cost: no second polling loop, no change
to the coordinator. The tracker keeps one :class:`Row` per image; the
display (:mod:`nixery.progress`) only reads snapshots of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from metastore.port import MetadataStore
from metastore.records import (
    BuildError,
    BuildRecord,
    BuildState,
    Claim,
    ImageRecord,
    LayerRecord,
    StoredManifest,
)


class State(StrEnum):
    QUEUED = "queued"  # waiting for a free slot (local) or not dispatched yet
    PENDING = "pending"  # claimed, the builder has not reported yet
    RUNNING = "running"  # the builder heartbeats
    BUILT = "built"
    CACHED = "cached"  # built before this run
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (State.BUILT, State.CACHED, State.FAILED)


@dataclass(frozen=True)
class Row:
    image: str
    state: State
    cache_key: str = ""
    build_id: str = ""
    started: float | None = None  # monotonic: the build was first seen
    ended: float | None = None
    reason: str = ""

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else now) - self.started


class Tracker:
    """Thread-safe rows, in the order the images were given."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rows: list[Row] = []
        self._by_key: dict[str, int] = {}
        self._lock = threading.Lock()
        self.changes: list[Callable[[Row], None]] = []  # called on every state change
        self.started = clock()

    def add(self, image: str, state: State, cache_key: str = "", reason: str = "") -> None:
        with self._lock:
            if cache_key:
                self._by_key[cache_key] = len(self._rows)
            row = Row(image, state, cache_key, reason=reason)
            if state.final:
                row = replace(row, started=self._clock(), ended=self._clock())
            self._rows.append(row)

    def rows(self) -> list[Row]:
        with self._lock:
            return list(self._rows)

    def now(self) -> float:
        return self._clock()

    def update(self, cache_key: str, state: State, build_id: str = "", reason: str = "") -> None:
        with self._lock:
            index = self._by_key.get(cache_key)
            if index is None:
                return
            old = self._rows[index]
            if old.state.final:
                return  # a late record read must not undo the outcome
            now = self._clock()
            row = replace(
                old,
                state=state,
                build_id=build_id or old.build_id,
                started=old.started if old.started is not None else now,
                ended=now if state.final else None,
                reason=reason or old.reason,
            )
            self._rows[index] = row
        if row.state is not old.state:
            for change in self.changes:
                change(row)

    def seen(self, build: BuildRecord) -> None:
        """A build record read by the coordinator: its state, if still active."""
        if build.state is BuildState.PENDING:
            self.update(build.cache_key, State.PENDING, build.build_id)
        elif build.state is BuildState.RUNNING:
            self.update(build.cache_key, State.RUNNING, build.build_id)

    def counts(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for row in self.rows():
            counts[row.state] += 1
        return counts


class ObservedMetadata:
    """A metadata store that shows the tracker every build record it returns."""

    def __init__(self, inner: MetadataStore, tracker: Tracker) -> None:
        self._inner = inner
        self._tracker = tracker

    def get_image(self, cache_key: str) -> ImageRecord | None:
        return self._inner.get_image(cache_key)

    def get_manifest(self, digest: str) -> StoredManifest | None:
        return self._inner.get_manifest(digest)

    def get_layer(self, key: str) -> LayerRecord | None:
        return self._inner.get_layer(key)

    def put_layer(self, layer: LayerRecord) -> None:
        self._inner.put_layer(layer)

    def claim_build(
        self,
        *,
        cache_key: str,
        build_id: str,
        image: str,
        spec: str,
        now: float,
        lease_s: float,
        failure_ttl_s: float,
        image_gone: bool = False,
    ) -> Claim:
        claim = self._inner.claim_build(
            cache_key=cache_key,
            build_id=build_id,
            image=image,
            spec=spec,
            now=now,
            lease_s=lease_s,
            failure_ttl_s=failure_ttl_s,
            image_gone=image_gone,
        )
        self._tracker.seen(claim.build)
        return claim

    def get_build(self, build_id: str) -> BuildRecord | None:
        build = self._inner.get_build(build_id)
        if build is not None:
            self._tracker.seen(build)
        return build

    def heartbeat(
        self, build_id: str, *, now: float, lease_s: float, timings: dict[str, float] | None = None
    ) -> None:
        self._inner.heartbeat(build_id, now=now, lease_s=lease_s, timings=timings)

    def complete_build(
        self,
        build_id: str,
        image: ImageRecord,
        *,
        now: float,
        timings: dict[str, float],
        closure_size: int,
        layer_count: int,
        log_tail: str,
    ) -> None:
        self._inner.complete_build(
            build_id,
            image,
            now=now,
            timings=timings,
            closure_size=closure_size,
            layer_count=layer_count,
            log_tail=log_tail,
        )

    def fail_build(
        self,
        build_id: str,
        error: BuildError,
        *,
        now: float,
        timings: dict[str, float],
        log_tail: str,
    ) -> None:
        self._inner.fail_build(build_id, error, now=now, timings=timings, log_tail=log_tail)

    def recent_builds(self, limit: int) -> Sequence[BuildRecord]:
        return self._inner.recent_builds(limit)
