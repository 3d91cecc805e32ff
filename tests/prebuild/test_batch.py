"""The pure and in-process parts of prebuilding: batches, lists, a task's share.

Table-driven, no Nix: the batch hand-over round-trips and splits as the
tasks expect, lists parse, and a batch task renews the leases of the builds
waiting for their turn and skips a build someone else finished.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

import builder_job.batch
from builder_job.batch import run_share
from launcher.port import MAX_ENV_VALUE_BYTES, BuildBatch, BuildRequest
from metastore.records import BuildError, BuildState
from metastore.sqlite import SqliteMetadataStore
from nixspec.names import Arch
from nixspec.spec import ImageSpec, PackageSource, SourceKind
from registry.prebuild import Status, parse_reference, read_names, resolve
from registry.settings import Settings
from registry.specs import resolver_for
from tests.conftest import PKGS

SOURCE = PackageSource(SourceKind.PATH, "/srv/pkgs", "0" * 40)


def request(index: int, packages: tuple[str, ...] = ()) -> BuildRequest:
    packages = packages or (f"package{index}",)  # one image (cache key) each
    spec = ImageSpec(f"image{index}", "latest", packages, Arch.AMD64, SOURCE)
    return BuildRequest(f"20261129T000000-{index:08x}", spec, trace="t")


@pytest.mark.parametrize(
    ("count", "shares"),
    [
        (1, [[0, 1, 2, 3, 4]]),
        (2, [[0, 2, 4], [1, 3]]),
        (3, [[0, 3], [1, 4], [2]]),
        (5, [[0], [1], [2], [3], [4]]),
        (7, [[0], [1], [2], [3], [4], [], []]),
    ],
)
def test_tasks_share_the_batch_round_robin(count: int, shares: list[list[int]]) -> None:
    batch = BuildBatch(tuple(request(i) for i in range(5)))
    got = [[batch.requests.index(r) for r in batch.share(i, count)] for i in range(count)]
    assert got == shares


@pytest.mark.parametrize(("index", "count"), [(-1, 2), (2, 2), (0, 0)])
def test_a_share_outside_the_task_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="task index"):
        BuildBatch((request(0),)).share(index, count)


def test_a_small_batch_travels_as_plain_json() -> None:
    batch = BuildBatch(tuple(request(i) for i in range(3)))
    value = batch.to_env()
    assert value.startswith('{"builds":')
    assert BuildBatch.from_env(value) == batch


def test_a_large_batch_is_compressed_and_one_too_large_even_then_is_split() -> None:
    # 200 similar images compress well below Cloud Run's limit: one variable.
    similar = BuildBatch(tuple(request(i, ("hello", "foo")) for i in range(200)))
    value = similar.to_env()
    assert value.startswith("zlib:") and len(value) <= MAX_ENV_VALUE_BYTES
    assert BuildBatch.from_env(value) == similar
    assert list(similar.chunks()) == [similar]
    # Random package names do not compress: the batch comes in several parts.
    noisy = BuildBatch(
        tuple(request(i, tuple(secrets.token_hex(16) for _ in range(8))) for i in range(600))
    )
    parts = list(noisy.chunks())
    assert len(parts) > 1
    assert all(len(part.to_env()) <= MAX_ENV_VALUE_BYTES for part in parts)
    assert tuple(r for part in parts for r in part.requests) == noisy.requests


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("hello", ("hello", "latest")),
        ("shell/git:v1", ("shell/git", "v1")),
        ("  foo:  ", ("foo", "latest")),
        ("python3packages.numpy:latest", ("python3packages.numpy", "latest")),
    ],
)
def test_references(reference: str, expected: tuple[str, str]) -> None:
    assert parse_reference(reference) == expected


def test_list_files_allow_comments_blanks_and_several_names_a_line() -> None:
    lines = ["# popular", "", "shell/git  hello:latest", "foo # the foo tool", "   "]
    assert read_names(lines) == ["shell/git", "hello:latest", "foo"]


def test_names_of_the_same_image_collapse_and_wrong_names_fail_alone(tmp_path: Path) -> None:
    settings = Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS), "STORAGE_PATH": str(tmp_path)})
    items = resolve(
        ["shell/hello", "hello/shell:latest", "Bad_Name", "hello", "shell/hello"],
        settings,
        resolver_for(settings),
    )
    assert [(i.image, i.status, i.aliases) for i in items] == [
        ("shell/hello:latest", Status.STARTED, ("hello/shell:latest",)),
        ("Bad_Name:latest", Status.FAILED, ()),
        ("hello:latest", Status.STARTED, ()),
    ]
    assert items[1].error is not None and items[1].error.code.name == "NAME_INVALID"


def test_a_task_keeps_waiting_leases_alive_and_skips_finished_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env(
        {"NIXERY_PKGS_PATH": str(PKGS), "STORAGE_PATH": str(tmp_path), "NIXERY_LEASE_S": "30"}
    )
    metadata = SqliteMetadataStore(tmp_path / "metadata.sqlite3")
    requests = [request(i) for i in range(5)]
    start = time.time()
    for r in requests:  # claimed up front with a short start allowance
        claim = metadata.claim_build(
            cache_key=r.spec.cache_key,
            build_id=r.build_id,
            image=r.spec.name,
            spec=r.spec.to_json(),
            now=start,
            lease_s=5,
            failure_ttl_s=0,
        )
        assert claim.won
    # Someone else finished image 4 (task 0's last) before its turn.
    metadata.fail_build(
        requests[4].build_id, BuildError("UNKNOWN", "gone"), now=start, timings={}, log_tail=""
    )
    seen: list[tuple[str, dict[str, str]]] = []

    def fake_run_build(r: BuildRequest, *_: object) -> bool:
        # When a build's turn comes, the others of the share still waiting
        # have had their leases renewed by the task (running, lease_s ahead).
        states = {}
        for other in requests:
            record = metadata.get_build(other.build_id)
            assert record is not None
            states[other.spec.name] = str(record.state)
            if other.spec.name == "image2" and r.spec.name == "image0":
                assert record.lease_expires_at >= start + settings.lease_s - 1
        seen.append((r.spec.name, states))
        return r.spec.name != "image2"

    monkeypatch.setattr(builder_job.batch, "run_build", fake_run_build)
    status = run_share(BuildBatch(tuple(requests)), 0, 2, settings, None, metadata)  # type: ignore[arg-type]
    assert [name for name, _ in seen] == ["image0", "image2"]  # image4 skipped
    assert seen[0][1]["image2"] == str(BuildState.RUNNING)
    assert seen[0][1]["image4"] == str(BuildState.FAILED)  # never revived
    assert seen[0][1]["image1"] == str(BuildState.PENDING)  # task 1's share: not ours
    assert status == 1  # image2 failed
