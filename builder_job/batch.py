"""One task of a batch execution: build this task's share, one after another.

A prebuild starts one execution whose tasks split the list
(:class:`launcher.port.BuildBatch`). Every build in it was claimed before the
execution started, with the start allowance as its first lease
(``NIXERY_BUILD_START_S``). A task builds its share sequentially, so the last
build of a share may wait far longer than that allowance: without help, its
lease would expire and the next pull of that image would take the build over
and start a second builder. So from the moment the task starts, a keeper
thread renews the lease of every build still waiting in its share, exactly
as a running builder's heartbeat does; each build leaves the keeper's set when
its turn comes (:func:`builder_job.pipeline.run_build` has its own heartbeat).
A waiting build therefore shows as ``running``: a live task has it in hand.

Before its turn a build's record is read again: a build that is no longer
active (it failed or succeeded meanwhile, e.g. a pull's take-over finished
it) is skipped, never rebuilt.

Exit status of the task: 0 every build of the share succeeded or was skipped,
1 at least one failed (each failure is recorded on its build).
"""

from __future__ import annotations

import logging
import threading
import time

from blobstore.port import BlobStore
from builder_job.pipeline import run_build
from launcher.port import BuildBatch, BuildRequest
from metastore.port import MetadataStore
from registry.logs import LABELS
from registry.settings import Settings

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the builds waiting for their turn."""

    def __init__(self, metadata: MetadataStore, lease_s: float, waiting: list[str]) -> None:
        self._metadata = metadata
        self._lease_s = lease_s
        self._waiting = list(waiting)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease-keeper")

    def release(self, build_id: str) -> None:
        """``build_id``'s turn has come: its own heartbeat takes over."""
        with self._lock:
            if build_id in self._waiting:
                self._waiting.remove(build_id)

    def renew(self) -> None:
        with self._lock:
            waiting = list(self._waiting)
        for build_id in waiting:
            try:
                # Only an active build is renewed (the adapters' precondition),
                # so a build someone else finished is never revived.
                self._metadata.heartbeat(build_id, now=time.time(), lease_s=self._lease_s)
            except Exception:  # one missed renewal is survivable; the next may succeed
                log.exception("cannot renew the lease of waiting build %s", build_id)

    def _run(self) -> None:
        while not self._stop.wait(max(self._lease_s / 3, 0.2)):
            self.renew()

    def __enter__(self) -> LeaseKeeper:
        self.renew()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_share(
    batch: BuildBatch,
    index: int,
    count: int,
    settings: Settings,
    store: BlobStore,
    metadata: MetadataStore,
) -> int:
    """Build task ``index`` of ``count``'s share of ``batch``; the exit status."""
    share = batch.share(index, count)
    log.info(
        "task %d of %d: %d of %d builds: %s",
        index,
        count,
        len(share),
        len(batch.requests),
        " ".join(r.build_id for r in share),
    )
    failed = 0
    with LeaseKeeper(metadata, settings.lease_s, [r.build_id for r in share]) as keeper:
        for request in share:
            keeper.release(request.build_id)
            if not _still_ours(request, metadata):
                continue
            token = LABELS.set(
                {"build_id": request.build_id, "image": f"{request.spec.name}:{request.spec.tag}"}
            )
            try:
                if not run_build(request, settings, store, metadata):
                    failed += 1
            finally:
                LABELS.reset(token)
    log.info("task %d of %d done: %d failed", index, count, failed)
    return 1 if failed else 0


def _still_ours(request: BuildRequest, metadata: MetadataStore) -> bool:
    record = metadata.get_build(request.build_id)
    if record is None or not record.state.active:
        state = "gone" if record is None else str(record.state)
        log.info("build %s is %s: skipped", request.build_id, state)
        return False
    return True
