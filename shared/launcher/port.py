"""The build launcher port: start the builder for one build, don't wait.

A :class:`BuildRequest` is the whole hand-over: the build id (the metadata
record the builder reports to) and the :class:`nixspec.spec.ImageSpec`. It
travels as JSON in the ``NIXERY_BUILD_REQUEST`` environment variable, which
works the same for a local subprocess (:mod:`launcher.local`) and a Cloud Run
job execution with per-execution overrides (:mod:`launcher.cloudrun`). The
builder reads it with :meth:`BuildRequest.from_environ`; everything else it
needs (storage, metadata, NIX_TIMEOUT) comes from its ordinary settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from nixspec.spec import ImageSpec

REQUEST_VARIABLE = "NIXERY_BUILD_REQUEST"


class LaunchError(Exception):
    """The builder could not be started (the build is failed as UNAVAILABLE)."""


@dataclass(frozen=True)
class BuildRequest:
    build_id: str
    spec: ImageSpec
    trace: str = ""  # the trace id of the request that caused the build, for log joins

    def to_json(self) -> str:
        return json.dumps(
            {"build_id": self.build_id, "spec": self.spec.to_dict(), "trace": self.trace},
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> BuildRequest:
        data = json.loads(text)
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


class Launcher(Protocol):
    def launch(self, request: BuildRequest) -> str:
        """Start the builder; return an execution name. Raises :class:`LaunchError`."""
        ...
