"""Popularity data for the layering, in Nixery's format.

``NIX_POPULARITY_URL`` points at a JSON object ``{"name-version": count}``
(what Nixery's popcount tool writes: how many store paths of a channel
reference each path). It is optional: the layering works well without it and
better with it. Loaded once per process; a failure to load is logged and the
build goes on without it, because popularity only tunes layer sharing.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def _parse(data: bytes) -> dict[str, int]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("popularity data must be a JSON object")
    return {str(k): int(v) for k, v in value.items()}


@functools.cache
def load_popularity(url: str) -> dict[str, int]:
    if not url:
        return {}
    try:
        if url.startswith(("http://", "https://")):
            with urllib.request.urlopen(url, timeout=30) as response:
                return _parse(response.read())
        return _parse(Path(url.removeprefix("file://")).read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("popularity data from %s not used: %s", url, exc)
        return {}
