"""A channel's release: its commit and its store paths.

``<base>/<channel>`` answers a redirect to the channel's current release
(``https://channels.nixos.org/nixos-unstable`` to
``https://releases.nixos.org/nixos/unstable/nixos-25.11pre…``). The redirect
is read, not followed blindly: the release URL pins everything after it, so
``git-revision`` and ``store-paths.xz`` come from the same release even if
the channel moves on meanwhile (what Nixery does too). A base that answers
the channel directly (a mirror) is used as it is.
"""

from __future__ import annotations

import lzma
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from popcount.narinfo import StorePath, parse_store_paths

DEFAULT_CHANNEL_BASE = "https://channels.nixos.org"
TIMEOUT_S = 60.0


class ChannelError(Exception):
    """The channel or its files cannot be read (the message says which URL)."""


@dataclass(frozen=True)
class Release:
    channel: str
    url: str  # the pinned release, without a trailing slash
    commit: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # answer the 3xx itself instead of following it


def _get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as answer:
            data: bytes = answer.read()
            return data
    except (urllib.error.URLError, OSError) as exc:
        raise ChannelError(f"cannot download {url}: {exc}") from exc


def resolve_release(channel: str, base: str = DEFAULT_CHANNEL_BASE) -> Release:
    url = f"{base.rstrip('/')}/{channel}"
    opener = urllib.request.build_opener(_NoRedirect)
    location = url
    try:
        with opener.open(url, timeout=TIMEOUT_S):
            pass  # 200: the base serves the channel's files itself
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ChannelError(f"no channel {channel!r} at {base} (404)") from exc
        if not 300 <= exc.code < 400 or not exc.headers.get("Location"):
            raise ChannelError(f"cannot resolve the channel at {url}: HTTP {exc.code}") from exc
        location = urllib.parse.urljoin(url, exc.headers["Location"])
    except (urllib.error.URLError, OSError) as exc:
        raise ChannelError(f"cannot reach {url}: {exc}") from exc
    location = location.rstrip("/")
    commit = _get(f"{location}/git-revision").decode().strip()
    return Release(channel, location, commit)


def store_paths(release: Release) -> list[StorePath]:
    """Every store path the release lists (``store-paths.xz``)."""
    url = f"{release.url}/store-paths.xz"
    try:
        text = lzma.decompress(_get(url)).decode()
    except lzma.LZMAError as exc:
        raise ChannelError(f"{url} is not xz-compressed: {exc}") from exc
    return parse_store_paths(text)
