"""One build, start to finish: the builder job's algorithm.

1. Nix: resolve the names, realise the outputs under a GC root, read the
   closure graph (:mod:`nixspec.realise`), all within ``NIX_TIMEOUT``.
2. Layering: split the closure within the layer budget (:mod:`layering`).
3. Assembly: pack or reuse each layer, the customisation layer, the config
   and both manifests (:mod:`builder_job.assemble`).
4. Record: the image record last, in the same step that marks the build
   succeeded; only now is the image visible.

A heartbeat thread extends the build's lease while this runs; if the process
dies, the heartbeat stops and the next request takes the build over. A
failure is recorded with its reason (which packages, Nix's message, the
stderr tail) so the registry can answer it and people can read it.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from blobstore.port import BlobStore
from builder_job import faults
from builder_job.assemble import LayerWriter, assemble, runtime_for
from builder_job.popularity import load_popularity
from builder_job.tarlayer import Entry
from launcher.port import BuildRequest
from layering import split_layers
from metastore.port import MetadataStore
from metastore.records import BuildError
from nixspec.errors import NixError, NixFailure, NixTimeout, PackageErrors, ProblemKind
from nixspec.graph import closure_size
from nixspec.realise import NixSession
from nixspec.runner import Deadline
from ocimodel.errors import ErrorCode
from ocimodel.image import LayerBlob
from registry.limits import LimitExceeded, build_timeout
from registry.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Stopwatch:
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - start, 4)


def build_error(exc: Exception) -> BuildError:
    """How a failure is answered to the client that asked for the image."""
    if isinstance(exc, PackageErrors):
        kinds = sorted({str(p.kind) for p in exc.problems})
        missing = [p.name for p in exc.problems if p.kind is ProblemKind.NOT_FOUND]
        return BuildError(
            code=ErrorCode.MANIFEST_UNKNOWN.name,
            message=("packages not found: " + ", ".join(missing) + "; " if missing else "")
            + "cannot build image: "
            + str(exc),
            detail={
                "kinds": kinds,
                "packages": [
                    {
                        "name": p.name,
                        "problem": str(p.kind),
                        "message": p.message,
                        "candidates": list(p.candidates),
                    }
                    for p in exc.problems
                ],
            },
        )
    if isinstance(exc, LimitExceeded):
        return BuildError(exc.code.name, str(exc), detail=exc.detail)
    if isinstance(exc, NixTimeout):
        return BuildError(ErrorCode.UNAVAILABLE.name, f"build timed out: {exc}")
    if isinstance(exc, NixFailure):
        return BuildError(ErrorCode.UNAVAILABLE.name, f"Nix failed: {exc}")
    return BuildError(
        ErrorCode.UNKNOWN.name, f"internal builder error: {type(exc).__name__}: {exc}"
    )


class TimedLayerWriter(LayerWriter):
    """Checks the build's deadline (``NIXERY_BUILD_TIMEOUT_S``) before each layer."""

    def __init__(
        self, store: BlobStore, metadata: MetadataStore, deadline: Deadline, limit_s: float
    ) -> None:
        super().__init__(store, metadata)
        self.deadline = deadline
        self.limit_s = limit_s

    def layer(
        self, key: str, comment: str, paths: Sequence[str] = (), entries: Sequence[Entry] = ()
    ) -> LayerBlob:
        if self.deadline.remaining() <= 0:
            raise build_timeout(self.limit_s)
        return super().layer(key, comment, paths, entries)


class Heartbeat:
    """Extends the build's lease every ``lease_s / 3`` seconds until stopped."""

    def __init__(self, beat: Callable[[], None], lease_s: float) -> None:
        self._beat = beat
        self._interval = max(lease_s / 3, 0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception:  # a missed beat is survivable; the next one may succeed
                log.exception("heartbeat failed")

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_build(
    request: BuildRequest, settings: Settings, store: BlobStore, metadata: MetadataStore
) -> bool:
    """Build the image of ``request`` and record the outcome; True on success."""
    spec = request.spec
    watch = Stopwatch()
    limits = settings.limits
    # The whole build's deadline; Nix runs under the earlier of it and NIX_TIMEOUT.
    deadline = Deadline(limits.build_timeout_s)
    nix_deadline = Deadline(min(settings.nix_timeout_s, limits.build_timeout_s))
    session = NixSession(spec, nix_deadline, allow_unfree=settings.allow_unfree)
    gcroots = settings.work_dir / "gcroots" / request.build_id
    gcroots.mkdir(parents=True, exist_ok=True)

    def on_time() -> None:
        if deadline.remaining() <= 0:
            raise build_timeout(limits.build_timeout_s)

    def beat() -> None:
        metadata.heartbeat(
            request.build_id, now=time.time(), lease_s=settings.lease_s, timings=dict(watch.timings)
        )

    try:
        with Heartbeat(beat, settings.lease_s):
            with watch.stage("resolve"):
                resolved = session.resolve()
            # Names were checked by the manifest function; the attributes they
            # resolved to (``1password`` is ``_1password``) are checked here.
            refused = limits.package_problem(r.attr_path for r in resolved)
            if refused is not None:
                raise LimitExceeded(ErrorCode.DENIED, *refused)
            with watch.stage("realise"):
                session.realise(resolved, gcroots / "result")
            on_time()
            package_paths = [p for r in resolved for p in r.out_paths]
            with watch.stage("closure"):
                graph = session.closure(sorted(set(package_paths)))
            size = closure_size(graph)
            limits.check_closure(size)  # before anything is packed
            on_time()
            with watch.stage("layering"):
                plan = split_layers(
                    graph,
                    sorted(set(package_paths)),
                    settings.layer_budget,
                    load_popularity(settings.popularity_url) or None,
                )
            on_time()
            writer = TimedLayerWriter(
                faults.wrap_store(store), metadata, deadline, limits.build_timeout_s
            )
            with watch.stage("layers"):
                image = assemble(
                    writer,
                    cache_key=spec.cache_key,
                    plan=plan,
                    package_paths=package_paths,
                    runtime=runtime_for(spec.arch.oci_arch, spec.runs_shell),
                )
            watch.timings["layers_packed"] = writer.stats.packed
            watch.timings["layers_reused"] = writer.stats.reused
            faults.point("record")  # test hook, inert unless NIXERY_FAULT_FILE is set
            with watch.stage("record"):
                metadata.complete_build(
                    request.build_id,
                    image,
                    now=time.time(),
                    timings=watch.timings,
                    closure_size=size,
                    layer_count=len(plan) + 1,
                    log_tail=session.log_tail(),
                )
        log.info("build %s of %s succeeded", request.build_id, spec.name)
        return True
    except Exception as exc:
        error = build_error(exc)
        if isinstance(exc, NixTimeout) and deadline.remaining() <= 0:
            error = build_error(build_timeout(limits.build_timeout_s))  # the binding limit
        if not isinstance(exc, NixError | LimitExceeded):
            log.exception("build %s failed", request.build_id)
        else:
            log.warning("build %s failed: %s", request.build_id, error.message)
        metadata.fail_build(
            request.build_id,
            error,
            now=time.time(),
            timings=watch.timings,
            log_tail=exc.log_tail
            if isinstance(exc, NixError) and exc.log_tail
            else session.log_tail(),
        )
        return False
    finally:
        shutil.rmtree(gcroots, ignore_errors=True)
