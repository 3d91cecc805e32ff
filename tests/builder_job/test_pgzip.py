"""Parallel gzip (`builder_job.pgzip`): valid gzip, the same bytes whatever the
thread count and however the writes are cut, memory bounded."""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder_job import pgzip
from builder_job.pgzip import ParallelGzipWriter, gzip_header, gzip_member, stored_member
from builder_job.tarlayer import pack_layer

P = ParamSpec("P")
T = TypeVar("T")
SMALL_BLOCK = 4096


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many members from little data."""
    monkeypatch.setattr(pgzip, "BLOCK", SMALL_BLOCK)
    monkeypatch.setattr(pgzip, "SAMPLE", 512)


def mixed_data(size: int, seed: int = 7) -> bytes:
    """Text, then random bytes, then text: compressible and stored members."""
    rng = random.Random(seed)
    text = b"".join(b"line %d of some text\n" % (i % 50) for i in range(size // 40 + 1))
    noise = rng.randbytes(size // 3)
    return (text[: size // 3] + noise + text)[:size]


def compress(data: bytes, threads: int, cuts: list[int] | None = None, level: int = 6) -> bytes:
    out = io.BytesIO()
    with ParallelGzipWriter(out, level, threads=threads) as gz:
        position = 0
        for cut in cuts or [len(data)]:
            gz.write(data[position : position + cut])
            position += cut
        gz.write(data[position:])
    return out.getvalue()


def members(data: bytes) -> list[bytes]:
    """Split a multi-member gzip file into its members (each decompressed)."""
    found = []
    while data:
        inflater = zlib.decompressobj(31)
        found.append(inflater.decompress(data))
        assert inflater.eof
        data = inflater.unused_data
    return found


@pytest.mark.parametrize("size", [0, 1, SMALL_BLOCK - 1, SMALL_BLOCK, 5 * SMALL_BLOCK + 17])
def test_round_trip_and_member_boundaries(size: int) -> None:
    data = mixed_data(size)
    out = compress(data, threads=3)
    assert gzip.decompress(out) == data
    parts = members(out)
    assert b"".join(parts) == data
    assert [len(p) for p in parts[:-1]] == [SMALL_BLOCK] * (len(parts) - 1)
    assert len(parts) == max(1, -(-size // SMALL_BLOCK))


def test_same_bytes_for_any_thread_count() -> None:
    data = mixed_data(20 * SMALL_BLOCK + 5)
    inline = compress(data, threads=0)
    assert {compress(data, threads=n) for n in (1, 2, 3, 8)} == {inline}


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=3 * SMALL_BLOCK), max_size=12))
def test_same_bytes_however_the_writes_are_cut(cuts: list[int]) -> None:
    data = mixed_data(9 * SMALL_BLOCK + 3)
    assert compress(data, threads=2, cuts=cuts) == compress(data, threads=0)


def test_each_member_is_its_segment_alone_with_a_fixed_header() -> None:
    out = compress(mixed_data(6 * SMALL_BLOCK), threads=2)
    parts = members(out)
    assert out == b"".join(gzip_member(part, 6) for part in parts)
    position = 0
    for part in parts:
        assert out[position : position + 10] == gzip_header(6)  # no name, mtime 0
        position += len(gzip_member(part, 6))


def test_incompressible_members_are_stored() -> None:
    noise = random.Random(1).randbytes(SMALL_BLOCK)
    member = gzip_member(noise, 6)
    assert member == stored_member(noise, 6)
    assert len(member) == 10 + 5 + SMALL_BLOCK + 8
    assert gzip.decompress(member) == noise
    text = b"abc" * SMALL_BLOCK
    assert len(gzip_member(text, 6)) < len(text) // 50


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_000])
def test_stored_member_is_valid(size: int) -> None:
    data = os.urandom(size)
    assert gzip.decompress(stored_member(data, 6)) == data


@pytest.mark.skipif(shutil.which("gzip") is None, reason="needs gzip (apt-get install gzip)")
def test_gzip_tool_reads_the_members_as_one_stream(tmp_path: Path) -> None:
    data = mixed_data(7 * SMALL_BLOCK + 9)
    path = tmp_path / "layer.gz"
    path.write_bytes(compress(data, threads=2))
    result = subprocess.run(["gzip", "-t", path], capture_output=True)
    assert result.returncode == 0, result.stderr
    assert subprocess.run(["gzip", "-dc", path], capture_output=True).stdout == data


class RecordingExecutor(ThreadPoolExecutor):
    """Counts the members in flight (submitted, not yet written)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.lock = threading.Lock()
        self.outstanding = 0
        self.peak = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self.lock:
            self.outstanding += 1
            self.peak = max(self.peak, self.outstanding)
        return super().submit(fn, *args, **kwargs)


class CountingSink(io.BytesIO):
    def __init__(self, executor: RecordingExecutor) -> None:
        super().__init__()
        self.executor = executor

    def write(self, data: bytes) -> int:  # type: ignore[override]
        with self.executor.lock:
            self.executor.outstanding -= 1
        return super().write(data)


def test_members_in_flight_are_bounded() -> None:
    executor = RecordingExecutor()
    sink = CountingSink(executor)
    data = mixed_data(200 * SMALL_BLOCK)
    with ParallelGzipWriter(sink, threads=2, executor=executor) as gz:
        for start in range(0, len(data), 1000):
            gz.write(data[start : start + 1000])
    executor.shutdown()
    assert gzip.decompress(sink.getvalue()) == data
    assert executor.peak <= 2 + 2


def test_an_error_stops_without_the_last_member() -> None:
    out = io.BytesIO()
    data = mixed_data(3 * SMALL_BLOCK + 1)
    with pytest.raises(RuntimeError), ParallelGzipWriter(out, threads=2) as gz:
        gz.write(data)
        raise RuntimeError("tar failed")
    written = gzip.decompress(out.getvalue())  # members written so far: the caller discards
    assert len(written) < len(data) and data.startswith(written)


def make_tree(root: Path) -> list[str]:
    rng = random.Random(3)
    paths = []
    for index in range(3):
        package = root / f"{index}{index}{index}-pkg-{index}"
        (package / "bin").mkdir(parents=True)
        (package / "bin" / "tool").write_bytes(rng.randbytes(3 * SMALL_BLOCK))
        (package / "share").mkdir()
        (package / "share" / "text").write_bytes(mixed_data(11 * SMALL_BLOCK, seed=index))
        paths.append(str(package))
    return paths


def test_pack_layer_same_bytes_sequential_and_parallel(tmp_path: Path) -> None:
    paths = make_tree(tmp_path)
    outputs = set()
    layers = set()
    for threads in (0, 1, 2, 4):
        out = io.BytesIO()
        layers.add(pack_layer(out, paths, threads=threads))
        outputs.add(out.getvalue())
    with ThreadPoolExecutor(3) as shared:
        out = io.BytesIO()
        layers.add(pack_layer(out, paths, executor=shared))
        outputs.add(out.getvalue())
    assert len(outputs) == 1 and len(layers) == 1
    assert len(members(outputs.pop())) > 3
