"""A fast, seeded mutation fuzzer: many requests from one ``random.Random``.

Hypothesis (``strategies``) explores structure and shrinks what it finds,
but drawing a request costs it tens of milliseconds. For volume this module
makes requests directly: start from a valid request (a pull, a blob with a
range, a HEAD by digest), then apply one to three mutations to its method,
path, query or headers, drawing from the same pools (:data:`NASTY`, the
media types, the seeded digests). A failure prints the seed and the request
index, and :func:`generate` with that seed replays the exact request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence

from tests.fuzz.strategies import MEDIA_TYPES, METHODS, NASTY, REAL_NAMES, FuzzRequest

# Code points worth drawing: ASCII, Latin-1, a few scripts, symbols, emoji.
_RANGES: tuple[tuple[int, int], ...] = (
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0xA0, 0xFF),
    (0x370, 0x3FF),
    (0x4E00, 0x4E80),
    (0x2000, 0x206F),
    (0x1F600, 0x1F64F),
    (0x660, 0x669),
)


def _text(rng: random.Random, limit: int = 24) -> str:
    chars = []
    for _ in range(rng.randint(0, limit)):
        low, high = rng.choice(_RANGES)
        chars.append(chr(rng.randint(low, high)))
    return "".join(chars).replace("\r", " ").replace("\n", " ")


def _mutate(rng: random.Random, value: str) -> str:
    position = rng.randint(0, len(value))
    edit = rng.randrange(7)
    if edit == 6 and re.search(r"[0-9]", value):
        # Numbers are where parsers overflow: huge, negative, unicode digits.
        number = rng.choice(("9" * 5000, "²", "٣", "-1", "1e9", "0x10", "", "18446744073709551616"))
        return re.sub(r"[0-9]+", number, value, count=1)
    if edit == 0:
        return value[:position] + _text(rng, 2) + value[position:]
    if edit == 1:
        return value[:position] + value[position + rng.randint(1, 4) :]
    if edit == 2:
        return value[:position] + rng.choice(NASTY) + value[position:]
    if edit == 3:
        return value.upper() if rng.random() < 0.5 else value * rng.randint(2, 40)
    if edit == 4:
        return rng.choice(NASTY)
    return value[:position] + "%" + f"{rng.randrange(256):02x}" + value[position:]


def _seed_request(rng: random.Random, known: Sequence[str]) -> FuzzRequest:
    name = rng.choice(REAL_NAMES)
    digest = rng.choice(known)
    shape = rng.randrange(7)
    headers: list[tuple[str, str]] = []
    if shape == 0:
        path = f"/v2/{name}/manifests/latest"
        headers.append(("Accept", ", ".join(rng.sample(MEDIA_TYPES, 3))))
    elif shape == 1:
        path = f"/v2/{name}/manifests/{digest}"
        headers.append(("If-None-Match", f'"{digest}"'))
    elif shape == 2:
        path = f"/v2/{name}/blobs/{digest}"
        headers.append(("Range", f"bytes={rng.randint(0, 500)}-{rng.randint(0, 5000)}"))
    elif shape == 3:
        path = f"/v2/{name}/tags/list?n={rng.randint(0, 3)}&last={_text(rng, 3)}"
    elif shape == 4:
        path = f"/builds?n={rng.randint(0, 30)}&state={rng.choice(('failed', 'running', ''))}"
    elif shape == 5:
        path = f"/builds/{_text(rng, 12)}"
    else:
        path = rng.choice(("/v2/", "/"))
    return FuzzRequest(rng.choice(("GET", "HEAD")), path, headers, b"")


def _mutate_request(rng: random.Random, request: FuzzRequest) -> FuzzRequest:
    method, path, headers = request.method, request.path, list(request.headers)
    part = rng.randrange(4)
    if part == 0:
        method = rng.choice(METHODS) if rng.random() < 0.8 else _mutate(rng, method).upper()
        method = "".join(c for c in method if c.isascii() and c.isalpha()) or "GET"
    elif part == 1:
        prefix, _, rest = path.partition("/v2/")
        segments = rest.split("/")
        index = rng.randrange(len(segments))
        segments[index] = _mutate(rng, segments[index])
        path = prefix + "/v2/" + "/".join(segments)
    elif part == 2:
        path = _mutate(rng, path) if rng.random() < 0.5 else path + "?" + _text(rng)
        if not path.startswith("/"):
            path = "/" + path
    else:
        names = ["Accept", "Range", "If-None-Match", "traceparent", "X-Cloud-Trace-Context"]
        header = (
            rng.choice([k for k, _ in headers] or names)
            if rng.random() < 0.5
            else (rng.choice(names))
        )
        value = _mutate(rng, dict(headers).get(header, "") or _text(rng))
        headers.append((header, value.replace("\r", " ").replace("\n", " ")))
    return FuzzRequest(method, path, headers, b"")


def generate(seed: int, count: int, known: Sequence[str]) -> Iterator[FuzzRequest]:
    """``count`` requests, the same ones for the same seed."""
    rng = random.Random(seed)
    for _ in range(count):
        request = _seed_request(rng, known)
        for _ in range(rng.randint(1, 3)):
            request = _mutate_request(rng, request)
        yield request
