"""The build lease rule, shared by every metadata adapter: pure.

For one cache key at most one build is live. A request that misses the cache
reads the key's current build inside a transaction and decides:

==================================  ======================================
current build                       decision
==================================  ======================================
none                                take: create a build, dispatch it
pending/running, lease not expired  follow: wait for it
pending/running, lease expired      take over: the builder died (its
                                    heartbeat stopped); start a new build
failed, within the failure TTL      follow: answer the remembered failure,
                                    so a broken name does not launch a
                                    build per pull
failed, older                       take: try again (a fix may have landed)
succeeded                           follow: the image record exists (it is
                                    written in the same step), unless the
                                    caller found it gone (``image_gone``)
==================================  ======================================

The adapters only supply the transaction; the decision is made here so the
embedded and serverless registries behave identically.
"""

from __future__ import annotations

from enum import Enum

from metastore.records import BuildRecord, BuildState


class Decision(Enum):
    TAKE = "take"
    FOLLOW = "follow"


def decide(
    current: BuildRecord | None, now: float, failure_ttl_s: float, image_gone: bool = False
) -> Decision:
    if current is None:
        return Decision.TAKE
    if current.state.active:
        return Decision.FOLLOW if current.lease_expires_at > now else Decision.TAKE
    if current.state is BuildState.FAILED:
        finished = current.finished_at if current.finished_at is not None else current.updated_at
        return Decision.FOLLOW if finished + failure_ttl_s > now else Decision.TAKE
    return Decision.TAKE if image_gone else Decision.FOLLOW


def new_build(
    build_id: str, cache_key: str, image: str, spec: str, now: float, lease_s: float
) -> BuildRecord:
    return BuildRecord(
        build_id=build_id,
        cache_key=cache_key,
        image=image,
        state=BuildState.PENDING,
        created_at=now,
        updated_at=now,
        lease_expires_at=now + lease_s,
        spec=spec,
    )
