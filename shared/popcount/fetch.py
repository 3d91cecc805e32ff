"""Downloading narinfos: parallel, kept alive, retried, cached on disk.

Every worker thread keeps one HTTP connection per cache host open
(``http.client``): tens of thousands of small requests over TLS cost far
less without a handshake each. A connection that breaks is replaced and the
request retried; 5xx and 429 answers are retried with exponential backoff
(:data:`ATTEMPTS` tries in all). 404 means the cache does not have the path
(unfree or failed packages): skipped, as Nixery skips it.

The on-disk cache holds one ``<hash>.narinfo`` file per path, written to a
temporary name and renamed, so an interrupted run never leaves half a file
and the next run only downloads what is missing. A narinfo is immutable for
its hash, so cached files never go stale.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from popcount.narinfo import StorePath, references

DEFAULT_CACHE_URL = "https://cache.nixos.org"
DEFAULT_JOBS = 32
ATTEMPTS = 4
BACKOFF_S = 0.5
TIMEOUT_S = 30.0


@dataclass
class Outcome:
    """What one run found, path by path."""

    references: dict[StorePath, list[StorePath]] = field(default_factory=dict)
    downloaded: int = 0
    from_cache: int = 0
    missing: list[StorePath] = field(default_factory=list)  # 404: not in the cache
    failed: dict[StorePath, str] = field(default_factory=dict)  # gave up: the reason


class _Connections(threading.local):
    def __init__(self) -> None:
        self.by_host: dict[tuple[str, str], http.client.HTTPConnection] = {}


class NarinfoFetcher:
    def __init__(self, cache_url: str, cache_dir: Path, *, jobs: int = DEFAULT_JOBS) -> None:
        parts = urllib.parse.urlsplit(cache_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{cache_url!r} is not an http(s) URL")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        self.cache_dir = cache_dir
        self.jobs = max(1, jobs)
        self._local = _Connections()

    def _connection(self) -> http.client.HTTPConnection:
        key = (self._scheme, self._netloc)
        connection = self._local.by_host.get(key)
        if connection is None:
            factory = (
                http.client.HTTPSConnection
                if self._scheme == "https"
                else http.client.HTTPConnection
            )
            connection = factory(self._netloc, timeout=TIMEOUT_S)
            self._local.by_host[key] = connection
        return connection

    def _drop_connection(self) -> None:
        connection = self._local.by_host.pop((self._scheme, self._netloc), None)
        if connection is not None:
            connection.close()

    def download(self, path: StorePath) -> str | None:
        """The narinfo of ``path``; None when the cache does not have it."""
        url_path = f"{self._prefix}/{path.hash}.narinfo"
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
            try:
                connection = self._connection()
                connection.request("GET", url_path, headers={"Accept-Encoding": "identity"})
                answer = connection.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()  # broken or closed by the server: a new one
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if answer.status == 200:
                return body.decode()
            if answer.status == 404:
                return None
            problem = f"HTTP {answer.status}"
            if answer.status != 429 and answer.status < 500:
                break  # 403 and the like: retrying will not help
        raise OSError(f"{self._scheme}://{self._netloc}{url_path}: {problem}")

    def narinfo(self, path: StorePath) -> tuple[str | None, bool]:
        """(narinfo or None, whether it came from the disk cache)."""
        cached = self.cache_dir / f"{path.hash}.narinfo"
        try:
            return cached.read_text(), True
        except FileNotFoundError:
            pass
        text = self.download(path)
        if text is not None:
            references(text)  # only ever cache real narinfos
            partial = cached.with_name(f".{cached.name}.{threading.get_ident()}")
            partial.write_text(text)
            os.replace(partial, cached)
        return text, False

    def fetch_all(
        self, paths: Sequence[StorePath], progress: Callable[[Outcome], None] | None = None
    ) -> Outcome:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        outcome = Outcome()
        lock = threading.Lock()

        def one(path: StorePath) -> None:
            try:
                text, cached = self.narinfo(path)
                refs = references(text) if text is not None else None
            except (OSError, ValueError) as exc:
                with lock:
                    outcome.failed[path] = str(exc)
            else:
                with lock:
                    if refs is None:
                        outcome.missing.append(path)
                    else:
                        outcome.references[path] = refs
                        if cached:
                            outcome.from_cache += 1
                        else:
                            outcome.downloaded += 1
            if progress is not None:
                progress(outcome)

        with concurrent.futures.ThreadPoolExecutor(self.jobs) as pool:
            for future in [pool.submit(one, p) for p in dict.fromkeys(paths)]:
                future.result()
        return outcome
