"""What the GCS and S3 adapter tests share: large random files, and several
builders writing one digest at the same moment."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from blobstore.port import BlobStore

MIB = 1024 * 1024


def write_random(path: Path, size: int) -> str:
    """Fill ``path`` with ``size`` random bytes, a MiB at a time; its digest."""
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for offset in range(0, size, MIB):
            chunk = os.urandom(min(MIB, size - offset))
            digest.update(chunk)
            handle.write(chunk)
    return "sha256:" + digest.hexdigest()


def write_all_at_once(
    stores: Sequence[BlobStore], digest: str, data: bytes, tmp_path: Path, media_type: str
) -> tuple[list[Path], list[BaseException]]:
    """Each store (its own client, as separate builders have) puts its own
    copy of ``data`` as ``digest``, all released by one barrier. Returns the
    copies (a put consumes its file) and the errors."""
    files = []
    for index in range(len(stores)):
        path = tmp_path / f"copy-{index}"
        path.write_bytes(data)
        files.append(path)
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            barrier.wait()
            stores[index].put_file(digest, files[index], media_type)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return files, errors
