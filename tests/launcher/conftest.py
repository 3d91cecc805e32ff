"""Fixtures for the launcher tests: the fake Cloud Run Admin API, stand-in
task commands, and a build request to launch."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher.cloudrun import DEFAULT_RETRY
from launcher.port import BuildRequest
from nixspec.names import Arch
from nixspec.spec import ImageSpec, PackageSource, SourceKind
from tests.support.fake_cloud_run import FakeCloudRun, start_fake_cloud_run

#: Tasks that print their environment as JSON to their log (no Nix needed).
ENV_DUMP = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
#: Tasks that run until killed (a build in progress).
SLEEPER = [sys.executable, "-c", "import time; time.sleep(3600)"]
#: The launcher's own retry rule with millisecond delays, so retry tests are quick.
FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.05, multiplier=2.0)

REQUEST = BuildRequest(
    build_id="build-0001",
    spec=ImageSpec(
        name="shell/hello",
        tag="latest",
        packages=("bashInteractive", "hello"),
        arch=Arch.AMD64,
        source=PackageSource(SourceKind.CHANNEL, "nixos-unstable", "0" * 40),
    ),
    trace="4bf92f3577b34da6a3ce929d0e0e4736",
)

StartFake = Callable[..., FakeCloudRun]


@pytest.fixture
def start_fake(tmp_path: Path) -> Iterator[StartFake]:
    """Start fakes (``start_fake(command=..., ...)``); all are stopped after the test."""
    fakes: list[FakeCloudRun] = []

    def start(**kwargs: Any) -> FakeCloudRun:
        kwargs.setdefault("command", ENV_DUMP)
        kwargs.setdefault("base_env", {"NIXERY_FROM_JOB": "job-definition"})
        fake = start_fake_cloud_run(tmp_path / f"fake-{len(fakes)}", **kwargs)
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        fake.stop()


@pytest.fixture
def fake(start_fake: StartFake) -> FakeCloudRun:
    return start_fake()
