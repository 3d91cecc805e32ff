"""The stacks the fault tests crash builders on: the embedded registry and
the serverless one, each started once per module with a short lease.

Settings that make crashes quick to recover from, without timing claims:
``NIXERY_LEASE_S=2`` (a dead builder's lease is gone two seconds after its
last heartbeat), ``NIXERY_BUILD_WAIT_S=120`` (a pull outlives a crash and a
take-over instead of answering 429), ``NIXERY_TEST_SLEEP_S`` (the test
package ``sleeper`` builds for a few seconds, a fresh derivation per test
session so Nix really builds it) and ``NIXERY_FAULT_FILE`` (the builder's
test hook, :mod:`builder_job.faults`: inert until a test writes a point's
name into the file).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.crash import Target, running_target

# A few seconds, with random decimals: a new derivation each session.
SLEEP_S = f"3.{secrets.randbelow(10**6):06d}"


def crash_env(fault_file: Path) -> dict[str, str]:
    return {
        "NIXERY_LEASE_S": "2",
        "NIXERY_BUILD_WAIT_S": "120",
        "NIXERY_TEST_SLEEP_S": SLEEP_S,
        "NIXERY_FAULT_FILE": str(fault_file),
    }


@pytest.fixture(scope="module", params=["embedded", "serverless"])
def target(
    request: pytest.FixtureRequest, nix: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(f"faults-{request.param}")
    with running_target(request.param, root, request, crash_env(root / "fault")) as started:
        yield started
