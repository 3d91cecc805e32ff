"""100 concurrent pulls of one cold image, on both stacks: one build.

The serverless stack runs two manifest-function processes behind the front
proxy, each with 50 request threads (``THREADS``, functions-framework's
gunicorn setting), so all 100 pulls are in flight at once and claim the
build across processes through Firestore. The embedded registry runs its
two gunicorn workers of 32 threads: 64 pulls in flight, the rest queued by
gunicorn. A pull waits up to ``NIXERY_BUILD_WAIT_S`` = 8 s, then gets
``429 TOOMANYREQUESTS`` with ``Retry-After``; each client here then retries,
as registry clients do, after ``min(Retry-After, 1 s)`` (the header says
30 s; the test does not sit that out).

What is asserted:

- without a crash: 100 successes with identical manifests, exactly one
  build record, one builder run and one Nix realisation; on serverless both
  manifest processes served pulls of the image;
- with the builder killed while Nix builds (``sleeper``, a few seconds):
  100 successes, exactly two build records (the dead one, still active,
  and one take-over claimed after its lease expired), two builder runs and
  two realisations. Any answer other than 200 is a 429 with a positive
  ``Retry-After``; the 429 count is printed, not asserted.
"""

from __future__ import annotations

import concurrent.futures
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from metastore.records import BuildState
from tests.support.crash import Target, running_target, wait_for

pytestmark = [pytest.mark.nix, pytest.mark.integration]

PULLS = 100
SLEEP_S = f"3.{secrets.randbelow(10**6):06d}"  # sleeper: a new derivation each session


@pytest.fixture(scope="module", params=["embedded", "serverless"])
def target(
    request: pytest.FixtureRequest, nix: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(f"concurrency-{request.param}")
    env = {
        "NIXERY_LEASE_S": "2",
        "NIXERY_BUILD_WAIT_S": "8",
        "NIXERY_TEST_SLEEP_S": SLEEP_S,
        "THREADS": "50",  # per serverless manifest process: 100 pulls in flight
    }
    with running_target(request.param, root, request, env, manifest_processes=2) as started:
        yield started


@dataclass
class Pulled:
    statuses: list[int]
    body: bytes


def pull_until_ok(target: Target, image: str) -> Pulled:
    statuses = []
    while True:
        answer = target.pull(image)
        statuses.append(answer.status_code)
        if answer.status_code != 429:
            return Pulled(statuses, answer.content)
        retry_after = int(answer.headers["Retry-After"])
        assert retry_after > 0
        time.sleep(min(retry_after, 1))


def pull_concurrently(target: Target, image: str, started: threading.Event) -> list[Pulled]:
    with concurrent.futures.ThreadPoolExecutor(PULLS) as pool:
        futures = [pool.submit(pull_until_ok, target, image) for _ in range(PULLS)]
        started.set()
        return [f.result() for f in futures]


def check(pulls: list[Pulled]) -> int:
    """All succeeded with one manifest; the number of 429s on the way."""
    finals = [p.statuses[-1] for p in pulls]
    assert finals == [200] * PULLS, [p.body[:300] for p in pulls if p.statuses[-1] != 200][:3]
    assert len({p.body for p in pulls}) == 1
    return sum(p.statuses.count(429) for p in pulls)


def test_a_hundred_cold_pulls_run_one_build(target: Target) -> None:
    image = "hello/libfoo"
    runs, realised = target.runs(), target.realisations()
    too_many = check(pull_concurrently(target, image, threading.Event()))
    [build] = target.builds_of(f"{image}:latest")
    assert build.state is BuildState.SUCCEEDED
    assert target.runs() - runs == 1
    assert target.realisations() - realised == 1
    if target.name == "serverless":
        for log in target.request_logs:  # both processes followed the one build
            assert f"pull of {image} waits for build {build.build_id}" in log.read_text()
    print(f"\n{target.name}: {PULLS} cold pulls, 1 build, {too_many} answers 429 on the way")


def test_a_hundred_cold_pulls_survive_a_builder_crash_with_one_take_over(target: Target) -> None:
    image = "sleeper/foo"
    runs, realised = target.runs(), target.realisations()
    started = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pulls = pool.submit(pull_concurrently, target, image, started)
        started.wait()
        wait_for(lambda: target.realisations() > realised, "the builder to run Nix")
        assert target.kill_builders() == 1
        too_many = check(pulls.result())
    dead, taken = target.builds_of(f"{image}:latest")
    assert dead.state.active
    assert dead.lease_expires_at <= taken.created_at
    assert taken.state is BuildState.SUCCEEDED
    assert target.runs() - runs == 2
    assert target.realisations() - realised == 2
    assert target.missing_blobs() == []
    print(
        f"\n{target.name}: {PULLS} cold pulls, builder killed in Nix, 1 take-over, "
        f"{too_many} answers 429 then retried"
    )
