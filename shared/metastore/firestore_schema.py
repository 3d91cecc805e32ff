"""Firestore documents: the collections, the fields, and records to and from them.

Document layout (every collection name starts with a configurable prefix,
``nixery-`` by default, so several registries can share one database)::

    <prefix>manifests/<digest>   media_type, data (bytes)           content-addressed
    <prefix>images/<cache_key>   cache_key, build_id, created_at,
                                 manifests: [{media_type, digest}]  sorted by media type
    <prefix>layers/<key>         key, digest, size, diff_id         first writer wins
    <prefix>builds/<build_id>    every BuildRecord field, error as
                                 {code, message, detail (JSON)},
                                 expire_at                          TTL
    <prefix>leases/<cache_key>   build_id, cache_key, updated_at,
                                 failure_ttl_s, expire_at           TTL

Times the registry reasons about (``created_at``, ``lease_expires_at``,
``finished_at`` ...) are the callers' float seconds, stored as doubles so they
come back exactly; only ``expire_at`` is a Firestore timestamp, because TTL
policies need one. Document IDs are the keys themselves (hex digests pass
unchanged); a key Firestore would refuse (``/``, ``.``, ``__x__``) is
percent-escaped.

TTL (see :data:`TTL_FIELDS`)
    Firestore deletes a document some time (up to about a day) after its
    ``expire_at``. Correctness never depends on it: the emulator applies no
    TTL at all, and the decision rule compares the stored float times. A
    deleted lease reads as "no build" (take), which is what the rule would
    decide anyway once a lease is that old: a build record expires
    ``retention_s`` after its last write, a lease ``retention_s`` after its
    claim, and a failed build's lease ``failure_ttl_s`` after the failure
    (after that a pull retries the build in any case). Images, manifests
    and layers never expire: they are the cache.

Indexes and TTL policies are declared here (:data:`TTL_FIELDS`,
:data:`INDEXES`, :data:`INDEX_EXEMPTIONS`) and Terraform's are checked
against them (``tests/infra``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from metastore.records import BuildError, BuildRecord, BuildState

DEFAULT_PREFIX = "nixery-"

#: Collection (without the prefix) -> the timestamp field its TTL policy uses.
TTL_FIELDS: Mapping[str, str] = {"builds": "expire_at", "leases": "expire_at"}
#: Composite indexes the queries need: none. ``recent_builds`` orders one
#: field, which Firestore's automatic single-field indexes serve.
INDEXES: tuple[Mapping[str, Any], ...] = ()
#: Fields never queried, exempted from single-field indexing (large values
#: cost index writes for nothing).
INDEX_EXEMPTIONS: Mapping[str, tuple[str, ...]] = {
    "manifests": ("data",),
    "builds": ("spec", "log_tail", "error", "timings"),
}


_RESERVED_ID = re.compile(r"^(\.{1,2}|__.*__)$")


def doc_id(key: str) -> str:
    """The document ID of ``key``: unchanged when Firestore accepts it."""
    if not key:
        raise ValueError("an empty key has no document")
    escaped = quote(key, safe=":")  # keeps hex, digests and -_.~; escapes '/' and '%'
    if _RESERVED_ID.match(escaped):
        escaped = escaped.replace(".", "%2E").replace("_", "%5F")
    return escaped


def timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def error_fields(error: BuildError | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "detail": json.dumps(error.detail)}


_FLOATS = ("created_at", "updated_at", "lease_expires_at", "finished_at")


def build_fields(build: BuildRecord) -> dict[str, Any]:
    fields = dataclasses.asdict(build)
    fields.update(state=str(build.state), error=error_fields(build.error))
    return fields


def build_from(data: Mapping[str, Any]) -> BuildRecord:
    names = {f.name for f in dataclasses.fields(BuildRecord)}
    fields = {name: value for name, value in data.items() if name in names}
    for name in _FLOATS:  # a whole number of seconds comes back as an int
        if fields.get(name) is not None:
            fields[name] = float(fields[name])
    error = fields.get("error")
    fields.update(
        state=BuildState(fields["state"]),
        error=BuildError(error["code"], error["message"], json.loads(error["detail"]))
        if error
        else None,
        timings={k: float(v) for k, v in (fields.get("timings") or {}).items()},
    )
    return BuildRecord(**fields)


def data_of(snapshot: Any) -> dict[str, Any] | None:
    """A snapshot's fields, or None when the document does not exist."""
    if not snapshot.exists:
        return None
    data: dict[str, Any] = snapshot.to_dict()
    return data
