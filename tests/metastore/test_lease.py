"""The build lease rule (`metastore.lease`), shared by every adapter."""

from __future__ import annotations

import dataclasses

import pytest

from metastore.lease import Decision, decide, new_build
from metastore.records import BuildError, BuildRecord, BuildState

NOW = 1000.0
TTL = 60.0
TAKE, FOLLOW = Decision.TAKE, Decision.FOLLOW


def build(
    state: BuildState,
    *,
    lease_expires_at: float = NOW + 30,
    finished_at: float | None = None,
    updated_at: float = NOW - 5,
) -> BuildRecord:
    return BuildRecord(
        build_id="b1",
        cache_key="k",
        image="hello:latest",
        state=state,
        created_at=NOW - 10,
        updated_at=updated_at,
        lease_expires_at=lease_expires_at,
        finished_at=finished_at,
        error=BuildError("MANIFEST_UNKNOWN", "hullo: not found")
        if state is BuildState.FAILED
        else None,
    )


CASES = [
    pytest.param(None, False, TAKE, id="none-take"),
    pytest.param(None, True, TAKE, id="none-image-gone-take"),
    # live builds are followed until their lease expires
    pytest.param(build(BuildState.PENDING), False, FOLLOW, id="pending-follow"),
    pytest.param(build(BuildState.RUNNING), False, FOLLOW, id="running-follow"),
    pytest.param(
        build(BuildState.RUNNING, lease_expires_at=NOW + 0.001), False, FOLLOW, id="lease-ends-soon"
    ),
    pytest.param(
        build(BuildState.RUNNING, lease_expires_at=NOW), False, TAKE, id="lease-ends-now-take-over"
    ),
    pytest.param(
        build(BuildState.PENDING, lease_expires_at=NOW - 1), False, TAKE, id="pending-expired"
    ),
    pytest.param(
        build(BuildState.RUNNING, lease_expires_at=NOW - 1), False, TAKE, id="running-expired"
    ),
    pytest.param(build(BuildState.RUNNING), True, FOLLOW, id="running-image-gone-still-follow"),
    # failures are remembered for the failure TTL
    pytest.param(
        build(BuildState.FAILED, finished_at=NOW - 1), False, FOLLOW, id="failed-recently"
    ),
    pytest.param(
        build(BuildState.FAILED, finished_at=NOW - TTL + 0.001), False, FOLLOW, id="failed-at-edge"
    ),
    pytest.param(
        build(BuildState.FAILED, finished_at=NOW - TTL), False, TAKE, id="failed-ttl-over"
    ),
    pytest.param(
        build(BuildState.FAILED, finished_at=NOW - 3600), False, TAKE, id="failed-long-ago"
    ),
    pytest.param(
        build(BuildState.FAILED, finished_at=None, updated_at=NOW - 1),
        False,
        FOLLOW,
        id="failed-no-finish-uses-updated-recent",
    ),
    pytest.param(
        build(BuildState.FAILED, finished_at=None, updated_at=NOW - TTL - 1),
        False,
        TAKE,
        id="failed-no-finish-uses-updated-old",
    ),
    pytest.param(
        build(BuildState.FAILED, finished_at=NOW - 1, lease_expires_at=NOW + 100),
        False,
        FOLLOW,
        id="failed-lease-irrelevant",
    ),
    # success: follow the image record, unless it is gone
    pytest.param(
        build(BuildState.SUCCEEDED, finished_at=NOW - 9999, lease_expires_at=0),
        False,
        FOLLOW,
        id="succeeded-follow",
    ),
    pytest.param(
        build(BuildState.SUCCEEDED, finished_at=NOW - 1), True, TAKE, id="succeeded-image-gone"
    ),
]


@pytest.mark.parametrize(("current", "image_gone", "decision"), CASES)
def test_decide(current: BuildRecord | None, image_gone: bool, decision: Decision) -> None:
    assert decide(current, NOW, TTL, image_gone) is decision


@pytest.mark.parametrize(
    ("ttl", "decision"),
    [
        pytest.param(0.0, TAKE, id="no-failure-memory"),
        pytest.param(1.5, FOLLOW, id="short"),
        pytest.param(1.0, TAKE, id="exactly-elapsed"),
    ],
)
def test_failure_ttl(ttl: float, decision: Decision) -> None:
    assert decide(build(BuildState.FAILED, finished_at=NOW - 1), NOW, ttl) is decision


def test_image_gone_defaults_to_false() -> None:
    assert decide(build(BuildState.SUCCEEDED, finished_at=NOW), NOW, TTL) is FOLLOW


def test_new_build_is_pending_with_a_lease() -> None:
    record = new_build("b9", "key", "shell/hello:latest", '{"spec":1}', NOW, 30.0)
    assert record == BuildRecord(
        build_id="b9",
        cache_key="key",
        image="shell/hello:latest",
        state=BuildState.PENDING,
        created_at=NOW,
        updated_at=NOW,
        lease_expires_at=NOW + 30.0,
        spec='{"spec":1}',
    )
    assert decide(record, NOW, TTL) is FOLLOW
    assert decide(record, NOW + 30.0, TTL) is TAKE
    assert decide(dataclasses.replace(record, state=BuildState.RUNNING), NOW + 29, TTL) is FOLLOW
