"""Signed blob URLs, cached per key until shortly before they expire.

Every blob GET on an object store answers a 307 to a signed URL, and signing
costs something: a round trip to IAM (Cloud Storage without a key file), or
at least a credential look-up and an HMAC (S3). A URL signed for ``ttl_s``
seconds is reused until only ``REFRESH_FRACTION`` of its lifetime is left:
with the default 600 s it is reused for 480 s, and a client that receives it
always has at least 120 s to follow it.

Concurrent misses for one key sign once: they queue on one of a fixed set of
lock stripes, so the locks never grow with the number of digests, and
different digests sign in parallel. The cache holds a bounded number of URLs,
least recently used dropped first. Nothing here knows a provider: the Cloud
Storage and S3 stores both use it (:mod:`blobstore.gcs`, :mod:`blobstore.s3`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

#: Reuse a URL while more than this fraction of its lifetime is left.
REFRESH_FRACTION = 0.2
#: Enough for every layer of a few hundred hot images; a URL is ~600 bytes.
MAX_CACHED_URLS = 4096
#: Lock stripes: bounded memory, and unrelated digests rarely share one.
LOCK_STRIPES = 64


class SignedUrlCache:
    """Signed URLs per key, reused until ``REFRESH_FRACTION`` of their
    lifetime is left. ``clock`` is wall-clock seconds (injectable for tests)."""

    def __init__(
        self,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = MAX_CACHED_URLS,
    ) -> None:
        self.ttl_s = ttl_s
        self._reuse_s = ttl_s * (1 - REFRESH_FRACTION)
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def _fresh(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            url, reuse_until = entry
            if self._clock() >= reuse_until:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return url

    def get(self, key: str, make: Callable[[], str]) -> str:
        """The cached URL for ``key``, or ``make()``'s, remembered."""
        url = self._fresh(key)
        if url is not None:
            return url
        with self._stripes[hash(key) % LOCK_STRIPES]:
            url = self._fresh(key)  # another thread may have signed meanwhile
            if url is not None:
                return url
            # The clock is read before signing: the URL's own lifetime starts
            # at signing, so the cache never outlives it.
            signed_at = self._clock()
            url = make()
            with self._lock:
                self._entries[key] = (url, signed_at + self._reuse_s)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
            return url
