"""A cache miss: take the build lease, dispatch the builder, wait, answer.

The manifest function never runs Nix. On a miss it asks the metadata store
for the key's build (:func:`metastore.lease.decide` is the rule): the first
request creates the build record and launches one builder; every other
request, in any process, follows that record. Followers poll it with
backoff until it succeeds (the image record is then there), fails (the
recorded reason is answered, and remembered for the failure TTL), or its
lease expires (the builder died: the follower takes the build over and
launches a new one). A new build's first lease is the start allowance
(``NIXERY_BUILD_START_S``: a Cloud Run job execution takes a while to start);
once running, the builder renews a shorter lease (``NIXERY_LEASE_S``) with its
heartbeat, so a crash is noticed quickly. Past the wait limit the client gets ``TOOMANYREQUESTS``
with ``Retry-After`` while the build goes on, so the next pull gets the
image. Starting a build (never following one) is refused with the same code
past ``NIXERY_MAX_BUILDS_PER_INSTANCE`` or ``NIXERY_MAX_BUILDS``
(:mod:`registry.limits`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from launcher.port import BuildRequest, Launcher, LaunchError
from metastore.lease import Decision, decide
from metastore.port import MetadataStore
from metastore.records import BuildError, BuildRecord, BuildState, ImageRecord
from nixspec.spec import ImageSpec
from ocimodel.errors import ErrorCode, RegistryError
from registry.limits import BuildCounter, InstanceBuilds, too_many_builds
from registry.logs import add_labels

log = logging.getLogger(__name__)

POLL_FIRST_S = 0.05
POLL_MAX_S = 1.0
RETRY_AFTER_S = 30


def new_build_id(clock: Callable[[], float] = time.time) -> str:
    """Sortable by time, unique: ``20261129T064215-3f9a1c2e``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock())) + "-" + secrets.token_hex(4)


def error_for(build: BuildRecord) -> RegistryError:
    """The answer for a failed build, from its record."""
    error = build.error or BuildError(ErrorCode.UNKNOWN.name, "build failed without a reason")
    try:
        code = ErrorCode[error.code]
    except KeyError:
        code = ErrorCode.UNKNOWN
    detail = {"build": build.build_id}
    if isinstance(error.detail, dict):
        detail.update(error.detail)
    return RegistryError(code, error.message, detail=detail)


@dataclass
class BuildCoordinator:
    metadata: MetadataStore
    launcher: Launcher
    wait_s: float
    start_s: float  # the first lease: how long a dispatched builder may take to report
    failure_ttl_s: float
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    # Builds this coordinator may start at once, and the registry in total
    # (registry.limits); 0 is no limit.
    max_builds_per_instance: int = 0
    max_builds: int = 0
    started: InstanceBuilds = field(default_factory=InstanceBuilds)

    def _check_capacity(self, spec: ImageSpec, image_gone: bool) -> None:
        """Refuse to *start* a build past a concurrency limit (429); following
        a live build of the same image is always allowed."""
        if not (self.max_builds or self.max_builds_per_instance):
            return
        counter = self.metadata
        if not isinstance(counter, BuildCounter):
            return  # a store that cannot count is not limited
        now = self.clock()
        refusal = None
        limit = self.max_builds_per_instance
        if limit and (mine := self.started.active(counter, now, limit)) >= limit:
            refusal = too_many_builds("NIXERY_MAX_BUILDS_PER_INSTANCE", mine, limit, "here")
        elif self.max_builds and (total := counter.active_builds(now)) >= self.max_builds:
            refusal = too_many_builds("NIXERY_MAX_BUILDS", total, self.max_builds, "in total")
        if refusal is None:
            return
        current = counter.current_build(spec.cache_key)
        if decide(current, now, self.failure_ttl_s, image_gone) is Decision.TAKE:
            raise refusal

    def _claim(self, spec: ImageSpec, trace: str, image_gone: bool = False) -> BuildRecord:
        self._check_capacity(spec, image_gone)
        claim = self.metadata.claim_build(
            cache_key=spec.cache_key,
            build_id=new_build_id(self.clock),
            image=f"{spec.name}:{spec.tag}",
            spec=spec.to_json(),
            now=self.clock(),
            lease_s=self.start_s,
            failure_ttl_s=self.failure_ttl_s,
            image_gone=image_gone,
        )
        add_labels(build_id=claim.build.build_id)  # joins this request's logs to the build's
        if not claim.won:
            return claim.build
        build = claim.build
        self.started.add(build.build_id)
        try:
            execution = self.launcher.launch(BuildRequest(build.build_id, spec, trace))
        except LaunchError as exc:
            log.error("cannot launch build %s: %s", build.build_id, exc)
            self.metadata.fail_build(
                build.build_id,
                BuildError(ErrorCode.UNAVAILABLE.name, f"the builder could not be started: {exc}"),
                now=self.clock(),
                timings={},
                log_tail="",
            )
        else:
            log.info("build %s of %s launched as %s", build.build_id, spec.name, execution)
        return self.metadata.get_build(build.build_id) or build

    def _pause(self, build_id: str, seconds: float) -> None:
        """Wait until the next poll. A launcher that can tell when a builder it
        started exits (``wait_for_exit``: the local one) ends the wait then, so
        the answer follows the build at once instead of up to a poll later."""
        wait_for_exit = getattr(self.launcher, "wait_for_exit", None)
        if wait_for_exit is None or not wait_for_exit(build_id, seconds):
            self.sleep(seconds)

    def obtain(self, spec: ImageSpec, trace: str = "") -> ImageRecord:
        """The image of ``spec``, building it if needed; raises RegistryError."""
        deadline = self.clock() + self.wait_s
        build = self._claim(spec, trace)
        log.info("pull of %s waits for build %s (%s)", spec.name, build.build_id, build.state)
        delay = POLL_FIRST_S
        while True:
            if build.state is BuildState.SUCCEEDED:
                image = self.metadata.get_image(spec.cache_key)
                if image is not None:
                    return image
                build = self._claim(spec, trace, image_gone=True)  # recorded, since removed
                continue
            elif build.state is BuildState.FAILED:
                raise error_for(build)
            elif not build.lease_valid(self.clock()):
                log.warning("build %s lost its lease; taking over", build.build_id)
                build = self._claim(spec, trace)
                continue
            if self.clock() >= deadline:
                raise RegistryError(
                    ErrorCode.TOOMANYREQUESTS,
                    f"image is still building (build {build.build_id}); retry shortly",
                    detail={"build": build.build_id},
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._pause(build.build_id, min(delay, max(deadline - self.clock(), 0.0)))
            delay = min(delay * 1.5, POLL_MAX_S)
            build = self.metadata.get_build(build.build_id) or build
