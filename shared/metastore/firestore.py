"""Metadata in Firestore (native mode): the serverless adapter.

Documents, their fields and their TTL: :mod:`metastore.firestore_schema`.

The claim: optimistic, without a transaction
    A lease document per cache key points at the key's current build, so
    taking a build never needs a query: a claim reads the lease and the build
    it names, applies :func:`metastore.lease.decide`, and either returns that
    build (follow) or commits one batch that creates the new build document
    and moves the lease to it (take). The batch is preconditioned on the
    lease read: ``create`` when there was none, ``update`` only if its
    ``update_time`` is still the one read. Of N concurrent claimers exactly
    one batch commits; every other is refused whole, reads the winner's lease
    and follows it. No read locks are held, so fifty simultaneous pulls of a
    cold image cost one write and fifty reads; a transaction instead makes
    contenders lock each other (the emulator answered 50 concurrent claims
    with "Transaction lock timeout" for over a minute). If a commit succeeded
    but its answer was lost, the next round finds the lease naming its own
    ``build_id`` and still reports the win, so the build is dispatched.
    A heartbeat between a take-over's read and its commit is not seen (it
    writes the build, not the lease): at worst a slow builder and its
    successor both finish, writing the same content-addressed blobs and the
    same image.

Other writes
    ``complete_build`` is one batch: the manifests, the image document and the
    build's succeeded state land together (the builder calls it after every
    blob is stored). ``heartbeat`` is a read then an update preconditioned on
    the read's ``update_time``: it never resurrects a build that finished in
    between, and holds no transaction locks. ``fail_build`` is a transaction
    (build and lease): it never overwrites a succeeded build.

Retries: :mod:`metastore.firestore_retry`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from metastore.firestore_retry import LOST_RACE, RETRY, TRANSACTION_ATTEMPTS
from metastore.firestore_schema import (
    DEFAULT_PREFIX,
    build_fields,
    build_from,
    data_of,
    doc_id,
    error_fields,
    timestamp,
)
from metastore.lease import Decision, decide, new_build
from metastore.records import (
    BuildError,
    BuildRecord,
    BuildState,
    Claim,
    ImageRecord,
    LayerRecord,
    StoredManifest,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETENTION_S = 30 * 24 * 3600.0  # build records: long enough to look a pull's build up
CLAIM_ROUNDS = 20  # read-decide-write rounds; each lost one means someone else won
HEARTBEAT_ATTEMPTS = 10
CALL_TIMEOUT_S = 30.0


class FirestoreMetadataStore:
    def __init__(
        self,
        client: firestore.Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        retention_s: float = DEFAULT_RETENTION_S,
        transaction_attempts: int = TRANSACTION_ATTEMPTS,
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.retention_s = retention_s
        self._attempts = transaction_attempts
        self._manifests = client.collection(prefix + "manifests")
        self._images = client.collection(prefix + "images")
        self._layers = client.collection(prefix + "layers")
        self._builds = client.collection(prefix + "builds")
        self._leases = client.collection(prefix + "leases")

    @classmethod
    def connect(
        cls,
        *,
        project: str,
        database: str = "(default)",
        prefix: str = DEFAULT_PREFIX,
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> FirestoreMetadataStore:
        """A store on a new client (``FIRESTORE_EMULATOR_HOST`` is honoured)."""
        client = firestore.Client(project=project, database=database)
        return cls(client, prefix=prefix, retention_s=retention_s)

    def _transaction(self, body: Callable[[Any], T]) -> T:
        def attempt() -> T:
            transaction = self._client.transaction(max_attempts=self._attempts)
            result: T = firestore.transactional(body)(transaction)
            return result

        result: T = RETRY(attempt)()
        return result

    def _expiry(self, now: float) -> datetime:
        return timestamp(now + self.retention_s)

    def _get(self, collection: Any, key: str) -> dict[str, Any] | None:
        return data_of(collection.document(doc_id(key)).get(retry=RETRY, timeout=CALL_TIMEOUT_S))

    # -- images -----------------------------------------------------------------
    def get_image(self, cache_key: str) -> ImageRecord | None:
        image = self._get(self._images, cache_key)
        if image is None:
            return None
        entries: list[dict[str, str]] = image["manifests"]
        refs = [self._manifests.document(doc_id(e["digest"])) for e in entries]
        found = {
            snap.id: data
            for snap in self._client.get_all(refs, retry=RETRY, timeout=CALL_TIMEOUT_S)
            if (data := data_of(snap)) is not None
        }
        if any(ref.id not in found for ref in refs):  # a manifest is gone: the image too
            log.warning("image %s names missing manifests", cache_key)
            return None
        manifests = tuple(
            StoredManifest(e["media_type"], bytes(found[ref.id]["data"]))
            for e, ref in zip(entries, refs, strict=True)
        )
        return ImageRecord(cache_key, manifests, image.get("build_id", ""))

    def get_manifest(self, digest: str) -> StoredManifest | None:
        data = self._get(self._manifests, digest)
        return None if data is None else StoredManifest(data["media_type"], bytes(data["data"]))

    # -- layers -----------------------------------------------------------------
    def get_layer(self, key: str) -> LayerRecord | None:
        data = self._get(self._layers, key)
        return (
            None
            if data is None
            else LayerRecord(key, data["digest"], data["size"], data["diff_id"])
        )

    def put_layer(self, layer: LayerRecord) -> None:
        # Packed by someone else first (or our retried create landed): keep theirs.
        with contextlib.suppress(gexc.AlreadyExists):
            self._layers.document(doc_id(layer.key)).create(
                dataclasses.asdict(layer), retry=RETRY, timeout=CALL_TIMEOUT_S
            )

    # -- builds -----------------------------------------------------------------
    def claim_build(
        self,
        *,
        cache_key: str,
        build_id: str,
        image: str,
        spec: str,
        now: float,
        lease_s: float,
        failure_ttl_s: float,
        image_gone: bool = False,
    ) -> Claim:
        lease_ref = self._leases.document(doc_id(cache_key))
        build_ref = self._builds.document(doc_id(build_id))
        for _ in range(CLAIM_ROUNDS):
            lease_snapshot = lease_ref.get(retry=RETRY, timeout=CALL_TIMEOUT_S)
            lease = data_of(lease_snapshot)
            current = None
            if lease is not None:
                found = self._get(self._builds, lease["build_id"])
                current = None if found is None else build_from(found)
            if current is not None and current.build_id == build_id:
                return Claim(current, won=True)  # an earlier round committed; answer was lost
            if current is not None and decide(current, now, failure_ttl_s, image_gone) is (
                Decision.FOLLOW
            ):
                return Claim(current, won=False)
            build = new_build(build_id, cache_key, image, spec, now, lease_s)
            lease_fields = {
                "build_id": build_id,
                "cache_key": cache_key,
                "updated_at": now,
                "failure_ttl_s": failure_ttl_s,
                "expire_at": self._expiry(now),
            }
            batch = self._client.batch()
            batch.create(build_ref, {**build_fields(build), "expire_at": self._expiry(now)})
            if lease_snapshot.exists:
                # Only if nobody moved the lease since we read it.
                option = self._client.write_option(last_update_time=lease_snapshot.update_time)
                batch.update(lease_ref, lease_fields, option=option)
            else:
                batch.create(lease_ref, lease_fields)  # only if nobody created it since
            try:
                batch.commit(retry=RETRY, timeout=CALL_TIMEOUT_S)
            except LOST_RACE:
                continue  # another claimer won: read its lease and follow it
            return Claim(build, won=True)
        raise RuntimeError(f"claim of {cache_key}: the lease kept changing")

    def get_build(self, build_id: str) -> BuildRecord | None:
        data = self._get(self._builds, build_id)
        return None if data is None else build_from(data)

    # -- counting, for the concurrency limits (registry.limits) ----------------
    def active_builds(self, now: float) -> int:
        """A range query on ``lease_expires_at`` (its automatic single-field
        index): only builds leased within the last lease match, so this reads
        the live builds plus the few that finished a moment ago."""
        query = self._builds.where(filter=FieldFilter("lease_expires_at", ">", now)).select(
            ["state"]
        )
        return sum(
            1
            for snap in query.stream(retry=RETRY, timeout=CALL_TIMEOUT_S)
            if BuildState((snap.to_dict() or {}).get("state", "failed")).active
        )

    def current_build(self, cache_key: str) -> BuildRecord | None:
        lease = self._get(self._leases, cache_key)
        return None if lease is None else self.get_build(lease["build_id"])

    def heartbeat(
        self, build_id: str, *, now: float, lease_s: float, timings: dict[str, float] | None = None
    ) -> None:
        ref = self._builds.document(doc_id(build_id))
        fields: dict[str, Any] = {
            "state": str(BuildState.RUNNING),
            "updated_at": now,
            "lease_expires_at": now + lease_s,
            "expire_at": self._expiry(now),
        }
        if timings is not None:
            fields["timings"] = dict(timings)
        for _ in range(HEARTBEAT_ATTEMPTS):
            snapshot = ref.get(retry=RETRY, timeout=CALL_TIMEOUT_S)
            data = data_of(snapshot)
            if data is None or not BuildState(data["state"]).active:
                return  # finished (or gone): a late beat must not revive it
            # The precondition makes "still active" and the write one step:
            # if the build finished since the read, the update is refused.
            option = self._client.write_option(last_update_time=snapshot.update_time)
            try:
                ref.update(fields, option=option, retry=RETRY, timeout=CALL_TIMEOUT_S)
                return
            except gexc.FailedPrecondition:
                continue  # written meanwhile: read it again
        raise RuntimeError(f"heartbeat of {build_id}: the record kept changing")

    def complete_build(
        self,
        build_id: str,
        image: ImageRecord,
        *,
        now: float,
        timings: dict[str, float],
        closure_size: int,
        layer_count: int,
        log_tail: str,
    ) -> None:
        ordered = sorted(image.manifests, key=lambda m: m.media_type)
        build_fields = {
            "state": str(BuildState.SUCCEEDED),
            "updated_at": now,
            "finished_at": now,
            "timings": dict(timings),
            "closure_size": closure_size,
            "layer_count": layer_count,
            "log_tail": log_tail,
            "manifest_digest": image.manifests[0].digest if image.manifests else "",
            "expire_at": self._expiry(now),
        }

        def write(with_build: bool) -> None:
            batch = self._client.batch()
            for manifest in ordered:
                # Content-addressed: rewriting the same digest writes the same bytes.
                batch.set(
                    self._manifests.document(doc_id(manifest.digest)),
                    {"media_type": manifest.media_type, "data": manifest.data},
                )
            batch.set(
                self._images.document(doc_id(image.cache_key)),
                {
                    "cache_key": image.cache_key,
                    "build_id": build_id,
                    "created_at": now,
                    "manifests": [
                        {"media_type": m.media_type, "digest": m.digest} for m in ordered
                    ],
                },
            )
            if with_build:
                batch.update(self._builds.document(doc_id(build_id)), build_fields)
            batch.commit(retry=RETRY, timeout=CALL_TIMEOUT_S)

        try:
            write(with_build=True)
        except gexc.NotFound:
            # The build record is gone (expired): the blobs are stored and the
            # image is valid, so record it anyway.
            log.warning("build %s has no record; storing its image only", build_id)
            write(with_build=False)

    def fail_build(
        self,
        build_id: str,
        error: BuildError,
        *,
        now: float,
        timings: dict[str, float],
        log_tail: str,
    ) -> None:
        build_ref = self._builds.document(doc_id(build_id))
        fields = {
            "state": str(BuildState.FAILED),
            "updated_at": now,
            "finished_at": now,
            "error": error_fields(error),
            "timings": dict(timings),
            "log_tail": log_tail,
            "expire_at": self._expiry(now),
        }

        def body(transaction: Any) -> None:
            build = data_of(build_ref.get(transaction=transaction))
            if build is None or build["state"] == str(BuildState.SUCCEEDED):
                return  # the image is recorded: a late failure report changes nothing
            lease_ref = self._leases.document(doc_id(build["cache_key"]))
            lease = data_of(lease_ref.get(transaction=transaction))
            transaction.update(build_ref, fields)
            if lease is not None and lease["build_id"] == build_id:
                # Past the failure TTL a pull retries anyway, so the lease may go then.
                ttl = float(lease.get("failure_ttl_s", 0.0))
                transaction.update(
                    lease_ref, {"updated_at": now, "expire_at": timestamp(now + ttl)}
                )

        self._transaction(body)

    def recent_builds(self, limit: int) -> Sequence[BuildRecord]:
        if limit <= 0:
            return []
        query = self._builds.order_by("created_at", direction=firestore.Query.DESCENDING).limit(
            limit
        )
        return [
            build_from(data)
            for snap in query.stream(retry=RETRY, timeout=CALL_TIMEOUT_S)
            if (data := data_of(snap)) is not None
        ]
