"""Deterministic layer tarballs, hashed while they stream.

A layer is a tar of some store paths, gzipped. The same paths must give the
same bytes on every machine and every run, so that a layer's digest depends
only on its content and is shared across images and rebuilds. Hence:

* entries in a fixed order: ``nix``, ``nix/store``, then each store path
  (sorted) walked depth-first with names sorted byte-wise;
* directory entries included (``nix``, ``nix/store`` and every directory),
  so extraction never invents directories with arbitrary modes;
* owner 0:0 without names, mtime 1 (the time Nix gives every store file),
  permission bits as in the store;
* hard links (the store's optimiser creates them) written as regular files:
  a hard-link entry would depend on which twin was seen first;
* gzip with mtime 0 and no file name in its header, compressed on several
  cores in segments whose bytes do not depend on the core count
  (:mod:`builder_job.pgzip`).

Both digests are computed as the bytes pass, by the gzip writer's own
thread: the diff_id (sha256 of the tar) and the blob digest and size (of the
gzip stream), so nothing is read twice and nothing is held in memory beyond
a few segments (:class:`HashingWriter` is the same sink for a plain stream).
File contents are copied in 1 MiB reads (tarfile's default is 16 KiB) and the
tar is written directly, not through tarfile's stream mode, which re-slices
its buffer on every write.

:class:`Entry` is also how the customisation layer describes its synthetic
symlinks and directories (:mod:`builder_job.customisation`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import BinaryIO

from builder_job.pgzip import ParallelGzipWriter

STORE_MTIME = 1
GZIP_LEVEL = 6  # zlib's default trade-off; what Docker and upstream Nixery use
COPY_BUFFER = 1024 * 1024  # bytes per read of a store file


class HashingWriter:
    """A write-only sink that hashes and counts bytes, then passes them on."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


@dataclass(frozen=True)
class Entry:
    """One synthetic tar entry (directories and symlinks)."""

    name: str  # relative, e.g. "bin/hello"
    kind: str  # "dir" | "symlink"
    mode: int = 0o755
    target: str = ""


@dataclass(frozen=True)
class PackedLayer:
    digest: str  # sha256 of the gzip stream
    size: int
    diff_id: str  # sha256 of the tar


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = link
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = STORE_MTIME
    return info


def _walk(path: str, name: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """(absolute path, tar name, lstat) depth-first, names sorted byte-wise."""
    st = os.lstat(path)
    yield path, name, st
    if stat.S_ISDIR(st.st_mode):
        children = sorted(os.listdir(path), key=os.fsencode)
        for child in children:
            yield from _walk(os.path.join(path, child), f"{name}/{child}")


def _add_path(tar: tarfile.TarFile, path: str, name: str) -> None:
    for full, entry_name, st in _walk(path, name):
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            tar.addfile(_info(entry_name, tarfile.DIRTYPE, mode))
        elif stat.S_ISLNK(st.st_mode):
            tar.addfile(_info(entry_name, tarfile.SYMTYPE, 0o777, link=os.readlink(full)))
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as handle:
                tar.addfile(_info(entry_name, tarfile.REGTYPE, mode, size=st.st_size), handle)
        else:
            raise ValueError(f"{full}: store paths hold only files, directories and symlinks")


def write_tar(
    target: BinaryIO, store_paths: Sequence[str] = (), entries: Iterable[Entry] = ()
) -> None:
    """Write the tar of ``store_paths`` (with the ``nix/store`` directories)
    followed by synthetic ``entries`` to ``target``."""
    # Positions count from 0 whatever the target's (tarfile pads to records by them).
    with tarfile.TarFile(
        fileobj=_Counting(target),  # type: ignore[arg-type]  # write and tell suffice
        mode="w",
        format=tarfile.PAX_FORMAT,
        copybufsize=COPY_BUFFER,
    ) as tar:
        if store_paths:
            tar.addfile(_info("nix", tarfile.DIRTYPE, 0o755))
            tar.addfile(_info("nix/store", tarfile.DIRTYPE, 0o755))
            for path in sorted(store_paths, key=os.fsencode):
                _add_path(tar, path, path.lstrip("/"))
        for entry in entries:
            if entry.kind == "dir":
                tar.addfile(_info(entry.name, tarfile.DIRTYPE, entry.mode))
            else:
                tar.addfile(_info(entry.name, tarfile.SYMTYPE, 0o777, link=entry.target))


def pack_layer(
    target: BinaryIO,
    store_paths: Sequence[str] = (),
    entries: Iterable[Entry] = (),
    level: int = GZIP_LEVEL,
    *,
    threads: int | None = None,
    executor: Executor | None = None,
) -> PackedLayer:
    """Write the gzipped layer to ``target`` and return its digests.

    ``executor`` (shared by a build's layers) or ``threads`` (a private pool;
    0 compresses inline) run the compression; the bytes are the same either way."""
    with ParallelGzipWriter(target, level, threads=threads, executor=executor) as gz:
        write_tar(gz, store_paths, entries)  # type: ignore[arg-type]
    return PackedLayer(gz.digest, gz.size, gz.raw_digest)


class _Counting:
    """A sink that knows its position (:class:`tarfile.TarFile` asks it)."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self._position = 0

    def write(self, data: bytes) -> int:
        self._position += len(data)
        return self._target.write(data)

    def tell(self) -> int:
        return self._position
