"""Headless Chromium for page tests: the rendered DOM and a screenshot.

Debian's ``chromium`` package (``apt-get install chromium``), run as these
machines need it: ``--headless --no-sandbox`` (tests run as root),
``--disable-gpu``, and no background networking, component updates, sync or
QUIC (the machines have no internet; without these flags Chromium keeps
trying), each run with a fresh ``--user-data-dir``. :func:`dump_dom` returns
the DOM after the page loaded, serialised (text nodes escaped again, so an
escaped ``<script>`` in the page reads ``&lt;script&gt;``); :func:`screenshot`
writes a PNG, and :func:`png_summary` decodes it (zlib and the five PNG
filters, no imaging library) to tell a rendered page from a blank one.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = "needs Chromium: apt-get install chromium (scripts/setup --test)"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
TIMEOUT_S = 120


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(INSTALL_HINT)
    return found


def _run(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise AssertionError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def dump_dom(url: str) -> str:
    return _run("--dump-dom", url)


def screenshot(url: str, path: Path, width: int = 1280, height: int = 900) -> Path:
    _run(f"--screenshot={path}", f"--window-size={width},{height}", url)
    if not path.is_file():
        raise AssertionError(f"chromium wrote no screenshot of {url}")
    return path


@dataclass(frozen=True)
class PngSummary:
    width: int
    height: int
    colours: int  # distinct pixel values
    background_share: float  # share of pixels with the most common value


def _unfilter(kind: int, line: bytearray, previous: bytes, bpp: int) -> None:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        corner = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + predictor) & 0xFF


def png_summary(path: Path) -> PngSummary:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    position, idat, header = 8, bytearray(), b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace:
        raise AssertionError(f"unsupported PNG: depth {depth}, type {colour_type}")
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    previous = bytes(stride)
    counts: Counter[bytes] = Counter()
    for row in range(height):
        start = row * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, previous, bpp)
        counts.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp))
        previous = bytes(line)
    most_common = counts.most_common(1)[0][1]
    return PngSummary(width, height, len(counts), most_common / (width * height))
