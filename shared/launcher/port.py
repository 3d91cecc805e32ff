"""The build launcher port: start the builder for one build, don't wait.

A :class:`BuildRequest` is the whole hand-over: the build id (the metadata
record the builder reports to) and the :class:`nixspec.spec.ImageSpec`. It
travels as JSON in the ``NIXERY_BUILD_REQUEST`` environment variable, which
works the same for a local subprocess (:mod:`launcher.local`) and a Cloud Run
job execution with per-execution overrides (:mod:`launcher.cloudrun`). The
builder reads it with :meth:`BuildRequest.from_environ`; everything else it
needs (storage, metadata, NIX_TIMEOUT) comes from its ordinary settings.

A :class:`BuildBatch` is the hand-over of many builds to one execution whose
tasks split the list (``nixery prebuild``, the prebuild trigger). It travels
in ``NIXERY_BUILD_BATCH``; every task gets the whole batch (per-execution
overrides are the same for all tasks) and takes its share by
``CLOUD_RUN_TASK_INDEX`` and ``CLOUD_RUN_TASK_COUNT``: builds ``index``,
``index + count``, ``index + 2 * count``... (round robin, so a sorted list
spreads similar images over the tasks). Cloud Run limits one variable's value
to 32 KiB: a batch over it is sent zlib-compressed (``zlib:`` + base64), and
:meth:`BuildBatch.chunks` splits a list too large even then.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nixspec.spec import ImageSpec

REQUEST_VARIABLE = "NIXERY_BUILD_REQUEST"
BATCH_VARIABLE = "NIXERY_BUILD_BATCH"
MAX_ENV_VALUE_BYTES = 32_768  # Cloud Run's limit for one environment variable's value
_ZLIB_PREFIX = "zlib:"


class LaunchError(Exception):
    """The builder could not be started (the build is failed as UNAVAILABLE)."""


@dataclass(frozen=True)
class BuildRequest:
    build_id: str
    spec: ImageSpec
    trace: str = ""  # the trace id of the request that caused the build, for log joins

    def to_dict(self) -> dict[str, Any]:
        return {"build_id": self.build_id, "spec": self.spec.to_dict(), "trace": self.trace}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BuildRequest:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRequest:
        if not isinstance(data.get("spec"), dict):
            raise ValueError("a build request needs a spec object")
        return cls(
            build_id=str(data["build_id"]),
            spec=ImageSpec.from_dict(data["spec"]),
            trace=str(data.get("trace", "")),
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BuildRequest:
        text = environ.get(REQUEST_VARIABLE)
        if not text:
            raise LaunchError(f"{REQUEST_VARIABLE} is not set: nothing to build")
        return cls.from_json(text)


@dataclass(frozen=True)
class BuildBatch:
    """Builds for one execution of several tasks; see the module docstring."""

    requests: tuple[BuildRequest, ...]

    def share(self, index: int, count: int) -> tuple[BuildRequest, ...]:
        """The builds task ``index`` of ``count`` runs (round robin)."""
        if not 0 <= index < count:
            raise ValueError(f"task index {index} is not within a task count of {count}")
        return self.requests[index::count]

    def to_env(self) -> str:
        """The variable's value: JSON, or compressed JSON when that is too long."""
        text = json.dumps(
            {"builds": [r.to_dict() for r in self.requests]},
            sort_keys=True,
            separators=(",", ":"),
        )
        if len(text.encode()) <= MAX_ENV_VALUE_BYTES:
            return text
        packed = base64.b64encode(zlib.compress(text.encode(), 9)).decode("ascii")
        return _ZLIB_PREFIX + packed

    @classmethod
    def from_env(cls, value: str) -> BuildBatch:
        if value.startswith(_ZLIB_PREFIX):
            value = zlib.decompress(base64.b64decode(value[len(_ZLIB_PREFIX) :])).decode()
        data = json.loads(value)
        if not isinstance(data, dict) or not isinstance(data.get("builds"), list):
            raise ValueError(f'{BATCH_VARIABLE} must be {{"builds": [...]}}')
        return cls(tuple(BuildRequest.from_dict(item) for item in data["builds"]))

    def chunks(self) -> Iterator[BuildBatch]:
        """This batch in consecutive parts whose :meth:`to_env` fits one variable
        (normally just itself; a part is halved until it fits)."""
        pending = [self.requests]
        while pending:
            part = pending.pop(0)
            if len(part) <= 1 or len(BuildBatch(part).to_env()) <= MAX_ENV_VALUE_BYTES:
                yield BuildBatch(part)
                continue
            middle = len(part) // 2
            pending[:0] = [part[:middle], part[middle:]]


class Launcher(Protocol):
    def launch(self, request: BuildRequest) -> str:
        """Start the builder; return an execution name. Raises :class:`LaunchError`."""
        ...


@runtime_checkable
class BatchLauncher(Launcher, Protocol):
    def launch_batch(
        self, batch: BuildBatch, task_count: int, *, timeout_s: float | None = None
    ) -> list[str]:
        """Start ``batch`` as executions of ``task_count`` tasks each (one
        execution unless the batch had to be split by :meth:`BuildBatch.chunks`)
        with a task timeout of ``timeout_s`` (None: the job's own); return
        their names. Raises :class:`LaunchError`."""
        ...
