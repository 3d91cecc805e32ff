"""Metadata in one SQLite file: the embedded default.

Several processes share the file (server workers and builder subprocesses),
so the database runs in WAL mode (readers never block the writer) with a busy
timeout, and every read-modify-write is one ``BEGIN IMMEDIATE`` transaction:
the write lock is taken up front, so two requests claiming the same build
serialise and exactly one creates it. Connections are per thread, as sqlite3
requires.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    cache_key TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL,
    build_id TEXT NOT NULL, created_at REAL NOT NULL,
    PRIMARY KEY (cache_key, media_type));
CREATE TABLE IF NOT EXISTS layers (
    key TEXT PRIMARY KEY, digest TEXT NOT NULL, size INTEGER NOT NULL, diff_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS builds (
    build_id TEXT PRIMARY KEY, cache_key TEXT NOT NULL, image TEXT NOT NULL,
    state TEXT NOT NULL, spec TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, lease_expires_at REAL NOT NULL,
    finished_at REAL, error TEXT, log_tail TEXT NOT NULL DEFAULT '',
    timings TEXT NOT NULL DEFAULT '{}', closure_size INTEGER NOT NULL DEFAULT 0,
    layer_count INTEGER NOT NULL DEFAULT 0, manifest_digest TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS builds_by_key ON builds (cache_key, created_at);
CREATE INDEX IF NOT EXISTS builds_by_time ON builds (created_at);
CREATE INDEX IF NOT EXISTS builds_by_lease ON builds (lease_expires_at);
"""

_BUILD_COLUMNS = (
    "build_id, cache_key, image, state, spec, created_at, updated_at, lease_expires_at, "
    "finished_at, error, log_tail, timings, closure_size, layer_count, manifest_digest"
)


def _build_from_row(row: sqlite3.Row) -> BuildRecord:
    error = json.loads(row["error"]) if row["error"] else None
    return BuildRecord(
        build_id=row["build_id"],
        cache_key=row["cache_key"],
        image=row["image"],
        state=BuildState(row["state"]),
        spec=row["spec"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lease_expires_at=row["lease_expires_at"],
        finished_at=row["finished_at"],
        error=BuildError(**error) if error else None,
        log_tail=row["log_tail"],
        timings=json.loads(row["timings"]),
        closure_size=row["closure_size"],
        layer_count=row["layer_count"],
        manifest_digest=row["manifest_digest"],
    )


class SqliteMetadataStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode up to power loss
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- images -----------------------------------------------------------------
    def get_image(self, cache_key: str) -> ImageRecord | None:
        rows = (
            self._connection()
            .execute(
                "SELECT m.media_type, m.data, i.build_id FROM images i "
                "JOIN manifests m ON m.digest = i.digest WHERE i.cache_key = ? "
                "ORDER BY m.media_type",
                (cache_key,),
            )
            .fetchall()
        )
        if not rows:
            return None
        manifests = tuple(StoredManifest(r["media_type"], bytes(r["data"])) for r in rows)
        return ImageRecord(cache_key, manifests, rows[0]["build_id"])

    def get_manifest(self, digest: str) -> StoredManifest | None:
        row = (
            self._connection()
            .execute("SELECT media_type, data FROM manifests WHERE digest = ?", (digest,))
            .fetchone()
        )
        return StoredManifest(row["media_type"], bytes(row["data"])) if row else None

    # -- layers -----------------------------------------------------------------
    def get_layer(self, key: str) -> LayerRecord | None:
        row = (
            self._connection()
            .execute("SELECT key, digest, size, diff_id FROM layers WHERE key = ?", (key,))
            .fetchone()
        )
        return LayerRecord(row["key"], row["digest"], row["size"], row["diff_id"]) if row else None

    def put_layer(self, layer: LayerRecord) -> None:
        self._connection().execute(
            "INSERT OR IGNORE INTO layers (key, digest, size, diff_id) VALUES (?, ?, ?, ?)",
            (layer.key, layer.digest, layer.size, layer.diff_id),
        )

    # -- builds -----------------------------------------------------------------
    def _current(self, db: sqlite3.Connection, cache_key: str) -> BuildRecord | None:
        row = db.execute(
            f"SELECT {_BUILD_COLUMNS} FROM builds WHERE cache_key = ? "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (cache_key,),
        ).fetchone()
        return _build_from_row(row) if row else None

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
        with self._transaction() as db:
            current = self._current(db, cache_key)
            decision = decide(current, now, failure_ttl_s, image_gone)
            if current is not None and decision is Decision.FOLLOW:
                return Claim(current, won=False)
            build = new_build(build_id, cache_key, image, spec, now, lease_s)
            db.execute(
                "INSERT INTO builds (build_id, cache_key, image, state, spec, created_at, "
                "updated_at, lease_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    build.build_id,
                    cache_key,
                    image,
                    str(build.state),
                    spec,
                    now,
                    now,
                    build.lease_expires_at,
                ),
            )
            return Claim(build, won=True)

    # -- counting, for the concurrency limits (registry.limits) ----------------
    def active_builds(self, now: float) -> int:
        row = (
            self._connection()
            .execute(
                "SELECT COUNT(*) FROM builds WHERE lease_expires_at > ? "
                "AND state IN ('pending', 'running')",
                (now,),
            )
            .fetchone()
        )
        return int(row[0])

    def current_build(self, cache_key: str) -> BuildRecord | None:
        return self._current(self._connection(), cache_key)

    def get_build(self, build_id: str) -> BuildRecord | None:
        row = (
            self._connection()
            .execute(f"SELECT {_BUILD_COLUMNS} FROM builds WHERE build_id = ?", (build_id,))
            .fetchone()
        )
        return _build_from_row(row) if row else None

    def heartbeat(
        self, build_id: str, *, now: float, lease_s: float, timings: dict[str, float] | None = None
    ) -> None:
        sets = "state = ?, updated_at = ?, lease_expires_at = ?"
        args: list[Any] = [str(BuildState.RUNNING), now, now + lease_s]
        if timings is not None:
            sets += ", timings = ?"
            args.append(json.dumps(timings, sort_keys=True))
        self._connection().execute(
            f"UPDATE builds SET {sets} WHERE build_id = ? AND state IN ('pending', 'running')",
            (*args, build_id),
        )

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
        with self._transaction() as db:
            for manifest in image.manifests:
                db.execute(
                    "INSERT OR IGNORE INTO manifests (digest, media_type, data) VALUES (?, ?, ?)",
                    (manifest.digest, manifest.media_type, manifest.data),
                )
                db.execute(
                    "INSERT OR REPLACE INTO images (cache_key, digest, media_type, build_id, "
                    "created_at) VALUES (?, ?, ?, ?, ?)",
                    (image.cache_key, manifest.digest, manifest.media_type, build_id, now),
                )
            db.execute(
                "UPDATE builds SET state = ?, updated_at = ?, finished_at = ?, timings = ?, "
                "closure_size = ?, layer_count = ?, log_tail = ?, manifest_digest = ? "
                "WHERE build_id = ?",
                (
                    str(BuildState.SUCCEEDED),
                    now,
                    now,
                    json.dumps(timings, sort_keys=True),
                    closure_size,
                    layer_count,
                    log_tail,
                    image.manifests[0].digest if image.manifests else "",
                    build_id,
                ),
            )

    def fail_build(
        self,
        build_id: str,
        error: BuildError,
        *,
        now: float,
        timings: dict[str, float],
        log_tail: str,
    ) -> None:
        encoded = json.dumps(
            {"code": error.code, "message": error.message, "detail": error.detail}, sort_keys=True
        )
        self._connection().execute(
            "UPDATE builds SET state = ?, updated_at = ?, finished_at = ?, error = ?, "
            "timings = ?, log_tail = ? WHERE build_id = ? AND state != 'succeeded'",
            (
                str(BuildState.FAILED),
                now,
                now,
                encoded,
                json.dumps(timings, sort_keys=True),
                log_tail,
                build_id,
            ),
        )

    def recent_builds(self, limit: int) -> Sequence[BuildRecord]:
        rows = (
            self._connection()
            .execute(
                f"SELECT {_BUILD_COLUMNS} FROM builds ORDER BY created_at DESC LIMIT ?", (limit,)
            )
            .fetchall()
        )
        return [_build_from_row(r) for r in rows]
