"""The parts of an S3 multipart upload, sent from a file in parallel.

S3 wants parts of at least 5 MiB (all but the last) and at most 10,000 of
them, so the part size is the configured one, raised to whole MiB when a
file would need more parts. ``concurrency`` parts are in flight at once, each
read with ``pread`` just before it is sent: memory follows the parts in
flight, not the file. The first failed part cancels those not yet started
and is raised; the caller aborts the upload. Starting and completing the
upload (where the create-if-absent condition goes) are the caller's:
:mod:`blobstore.s3`.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIB = 1024 * 1024
#: S3's limits: parts of at least 5 MiB (except the last), at most 10,000.
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000
#: What a completion lists of each part's answer besides its ETag: the
#: checksums S3 computed, when the client asked for them.
_CHECKSUM_KEYS = (
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
)


def part_size_for(size: int, part_size: int) -> int:
    """``part_size``, or more (whole MiB) if ``size`` would need over 10,000 parts."""
    return max(part_size, math.ceil(size / MAX_PARTS / MIB) * MIB)


def send_parts(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    upload_id: str,
    path: Path,
    size: int,
    part_size: int,
    concurrency: int,
) -> list[dict[str, Any]]:
    """Upload ``path`` (``size`` bytes) as the parts of ``upload_id``; the
    list ``CompleteMultipartUpload`` wants, in part order."""
    fd = os.open(path, os.O_RDONLY)
    try:

        def send(number: int) -> dict[str, Any]:
            offset = (number - 1) * part_size
            data = os.pread(fd, min(part_size, size - offset), offset)
            answer: Any = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
            part = {"PartNumber": number, "ETag": answer["ETag"]}
            return part | {k: answer[k] for k in _CHECKSUM_KEYS if answer.get(k)}

        with ThreadPoolExecutor(concurrency, thread_name_prefix="s3-part") as pool:
            futures = [pool.submit(send, n) for n in range(1, math.ceil(size / part_size) + 1)]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:  # a failed part: send no more
                    future.cancel()
                raise
    finally:
        os.close(fd)
