"""Popularity data for the layering, in Nixery's format.

``NIX_POPULARITY_URL`` points at a JSON object ``{"name-version": count}``
(what Nixery's popcount tool, and ``nixery popcount``, write: how many store
paths of a channel reference each path). It is optional: the layering works
well without it and better with it.

Where it can live: ``https://`` / ``http://`` (any web server, or a public
object), ``gs://bucket/object`` (read with google-cloud-storage and the
builder's own credentials, so the object can stay private; the library is
imported only for such a URL), or a local file (a path or ``file://``).

Loaded once per process and kept: a Cloud Run task, or a local builder,
builds with the same data throughout, and the file of a whole channel is a
few megabytes. A failure to load is logged and the build goes on without it
(and the failure is kept too, so one bad URL costs one warning, not one per
build), because popularity only tunes layer sharing.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 30.0


def parse_popularity(data: bytes) -> dict[str, int]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("popularity data must be a JSON object")
    return {str(k): int(v) for k, v in value.items()}


def _read_gcs(url: str) -> bytes:
    from google.cloud.storage import Client  # type: ignore[import-untyped]

    bucket, _, name = url.removeprefix("gs://").partition("/")
    if not bucket or not name:
        raise ValueError(f"{url} is not gs://BUCKET/OBJECT")
    client = Client()
    data: bytes = client.bucket(bucket).blob(name).download_as_bytes(timeout=FETCH_TIMEOUT_S)
    return data


def fetch(url: str) -> bytes:
    """The bytes at ``url`` (http(s), gs or a local path)."""
    if url.startswith(("http://", "https://")):
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:
            data: bytes = response.read()
            return data
    if url.startswith("gs://"):
        return _read_gcs(url)
    return Path(url.removeprefix("file://")).read_bytes()


@functools.cache
def load_popularity(url: str) -> dict[str, int]:
    if not url:
        return {}
    try:
        popularity = parse_popularity(fetch(url))
    except Exception as exc:  # any failure only costs layer sharing, never the build
        log.warning("popularity data from %s not used: %s", url, exc)
        return {}
    log.info("popularity data from %s: %d paths", url, len(popularity))
    return popularity
