"""Prebuilding: a list of image names to builds started up front.

Shared by ``nixery prebuild`` and the prebuild trigger (:mod:`registry.trigger`),
so both decide alike. The steps, each a function, each answering
:class:`Item` values:

1. :func:`resolve`: every ``name[:tag]`` becomes an :class:`ImageSpec` (or a
   failed item saying why the name is wrong); names of the same image
   (``shell/git`` and ``git/shell``) collapse into one item.
2. :func:`check_cache`: images already built are ``cached``; nothing more to do.
3. :func:`claim`: the others are claimed in the metadata store *before*
   anything starts, with the start allowance as their first lease, exactly as
   a pull claims one. So records exist at once: a pull arriving meanwhile
   follows the prebuild's build instead of starting its own, and a claim lost
   to a build already running elsewhere is ``building`` (followed, not
   duplicated). A failure remembered within ``failure_ttl_s`` is answered as
   ``failed`` without a new build.
4. :func:`dispatch`: the claimed builds go to the launcher as one
   :class:`launcher.port.BuildBatch`: one Cloud Run execution whose tasks split
   the list (or local builder processes). If it cannot start, every claimed
   build is failed as ``UNAVAILABLE`` so nobody waits for it.

Then whoever asked follows the build records (the CLI does; the trigger
answers at once and lets pulls and later runs find the images).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from launcher.port import BatchLauncher, BuildBatch, BuildRequest, Launcher, LaunchError
from metastore.port import MetadataStore
from metastore.records import BuildError, BuildState
from nixspec.sources import SourceResolver
from nixspec.spec import ImageSpec
from ocimodel.errors import ErrorCode, RegistryError
from registry.builds import error_for, new_build_id
from registry.settings import Settings
from registry.specs import spec_for

DEFAULT_TASKS = 10  # tasks per execution when not asked: parallel, yet few cold starts
MAX_TASKS = 1000
#: Per build of a task's share, on top of NIX_TIMEOUT: packing and uploading
#: the layers (minutes for images of gigabytes).
PACK_ALLOWANCE_S = 600.0
MIN_TASK_TIMEOUT_S = 1800.0
MAX_TASK_TIMEOUT_S = 24 * 3600.0  # Cloud Run's longest task timeout for most jobs


class Status(StrEnum):
    CACHED = "cached"  # built before: nothing to do
    STARTED = "started"  # claimed here and handed to a builder
    BUILDING = "building"  # someone else's live build: follow it
    FAILED = "failed"  # a wrong name, a remembered failure, or no builder could start


@dataclass(frozen=True)
class Item:
    image: str  # name:tag as first asked
    status: Status
    spec: ImageSpec | None = None
    build_id: str = ""
    error: RegistryError | None = None
    aliases: tuple[str, ...] = ()  # other names of the same image in the list

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"image": self.image, "status": str(self.status)}
        if self.build_id:
            out["build"] = self.build_id
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.error is not None:
            out["code"] = self.error.code.name
            out["message"] = str(self.error)
        return out


def parse_reference(reference: str) -> tuple[str, str]:
    """``name[:tag]`` to (name, tag); the tag defaults to ``latest``."""
    name, _, tag = reference.strip().partition(":")
    return name, tag or "latest"


def read_names(lines: Iterable[str]) -> list[str]:
    """Image names from a list file: one per line (or several separated by
    blanks); ``#`` starts a comment."""
    names = []
    for line in lines:
        names.extend(line.split("#", 1)[0].split())
    return names


def resolve(references: Sequence[str], settings: Settings, resolver: SourceResolver) -> list[Item]:
    items: list[Item] = []
    by_key: dict[str, int] = {}
    for reference in references:
        name, tag = parse_reference(reference)
        shown = f"{name}:{tag}"
        try:
            spec = spec_for(settings, resolver, name, tag)
        except RegistryError as exc:
            items.append(Item(shown, Status.FAILED, error=exc))
            continue
        index = by_key.get(spec.cache_key)
        if index is not None:
            first = items[index]
            if shown != first.image and shown not in first.aliases:
                items[index] = dataclasses.replace(first, aliases=(*first.aliases, shown))
            continue
        by_key[spec.cache_key] = len(items)
        items.append(Item(shown, Status.STARTED, spec=spec))
    return items


def check_cache(items: Sequence[Item], metadata: MetadataStore) -> list[Item]:
    return [
        dataclasses.replace(item, status=Status.CACHED)
        if item.spec is not None and metadata.get_image(item.spec.cache_key) is not None
        else item
        for item in items
    ]


def claim(
    items: Sequence[Item],
    metadata: MetadataStore,
    *,
    start_s: float,
    failure_ttl_s: float,
    clock: Callable[[], float] = time.time,
) -> list[Item]:
    """Claim every item still to build (status ``started``)."""
    out = []
    for item in items:
        if item.status is not Status.STARTED or item.spec is None:
            out.append(item)
            continue
        spec = item.spec
        result = metadata.claim_build(
            cache_key=spec.cache_key,
            build_id=new_build_id(clock),
            image=f"{spec.name}:{spec.tag}",
            spec=spec.to_json(),
            now=clock(),
            lease_s=start_s,
            failure_ttl_s=failure_ttl_s,
        )
        build = result.build
        if result.won:
            status = Status.STARTED
        elif build.state is BuildState.FAILED:
            out.append(
                dataclasses.replace(
                    item, status=Status.FAILED, build_id=build.build_id, error=error_for(build)
                )
            )
            continue
        elif build.state is BuildState.SUCCEEDED:
            status = Status.CACHED  # finished between the cache check and the claim
        else:
            status = Status.BUILDING
        out.append(dataclasses.replace(item, status=status, build_id=build.build_id))
    return out


def task_timeout_s(settings: Settings, builds: int, tasks: int) -> float:
    """A task's timeout: its share built one after another, each within
    NIX_TIMEOUT plus packing (never below the usual job timeout)."""
    share = math.ceil(builds / max(tasks, 1))
    wanted = share * (settings.nix_timeout_s + PACK_ALLOWANCE_S)
    return min(max(wanted, MIN_TASK_TIMEOUT_S), MAX_TASK_TIMEOUT_S)


def dispatch(
    items: Sequence[Item],
    launcher: Launcher,
    metadata: MetadataStore,
    settings: Settings,
    *,
    tasks: int = 0,
    trace: str = "",
) -> tuple[list[Item], list[str]]:
    """Start every ``started`` item's build: one batch when the launcher takes
    batches. Returns the items (failed ones updated) and the executions."""
    started = [i for i in items if i.status is Status.STARTED and i.spec is not None]
    if not started:
        return list(items), []
    requests = [BuildRequest(i.build_id, i.spec, trace) for i in started if i.spec is not None]
    task_count = max(1, min(tasks or DEFAULT_TASKS, len(requests), MAX_TASKS))
    try:
        if isinstance(launcher, BatchLauncher):
            executions = launcher.launch_batch(
                BuildBatch(tuple(requests)),
                task_count,
                timeout_s=task_timeout_s(settings, len(requests), task_count),
            )
        else:
            executions = [launcher.launch(request) for request in requests]
    except LaunchError as exc:
        error = BuildError(ErrorCode.UNAVAILABLE.name, f"the builder could not be started: {exc}")
        failed = {}
        for item in started:
            metadata.fail_build(item.build_id, error, now=time.time(), timings={}, log_tail="")
            failed[item.build_id] = RegistryError(ErrorCode.UNAVAILABLE, error.message)
        return [
            dataclasses.replace(i, status=Status.FAILED, error=failed[i.build_id])
            if i.status is Status.STARTED and i.build_id in failed
            else i
            for i in items
        ], []
    return list(items), executions
