"""Transient errors from Firestore and Cloud Storage: retried, never a
duplicate build.

The serverless stack runs with both emulators behind fault-injecting proxies
(:mod:`tests.support.fault_proxy` for Cloud Storage: 503s and connection
resets before and after the request was carried out;
:mod:`tests.support.grpc_fault_proxy` for Firestore: ``UNAVAILABLE`` before
a call, or after a commit landed). Every function and builder process talks
to the stores only through them. Eight concurrent cold pulls, then warm
blob and manifest requests, must all succeed: the adapters retry with the
client libraries' helpers (``google.api_core.retry.Retry``: truncated
exponential backoff with full jitter; google-cloud-storage's
``DEFAULT_RETRY`` and, for preconditioned writes,
``DEFAULT_RETRY_IF_GENERATION_SPECIFIED``) and every write is idempotent
(create-if-absent objects, preconditioned claims that recognise their own
lost answer), so one job runs and Nix realises once.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, exponential_sleep_generator
from google.cloud.storage.retry import (  # type: ignore[import-untyped]
    DEFAULT_RETRY,
    DEFAULT_RETRY_IF_GENERATION_SPECIFIED,
)

from metastore import firestore_retry
from tests.conftest import PKGS
from tests.support.crash import DOCKER, manifest_digests, serverless_target
from tests.support.fault_proxy import FAULTS, start_fault_proxy
from tests.support.firestore_emulator import FirestoreEmulator, session_emulator
from tests.support.gcs_emulator import GcsEmulator, start_gcs_emulator
from tests.support.grpc_fault_proxy import start_grpc_fault_proxy
from tests.support.serverless import start_serverless

PULLS = 8


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    emulator = start_gcs_emulator(tmp_path_factory.mktemp("gcs"))
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def firestore(request: pytest.FixtureRequest) -> FirestoreEmulator:
    return session_emulator(request)


def error(kind: type[gexc.GoogleAPICallError]) -> gexc.GoogleAPICallError:
    return kind("injected")


def test_the_retry_helpers_back_off_with_full_jitter() -> None:
    """What the adapters pass as ``retry=``: the libraries' own helpers."""
    retry = firestore_retry.RETRY
    assert isinstance(retry, Retry)
    for transient in (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.Aborted):
        assert retry._predicate(error(transient))
    for final in (gexc.NotFound, gexc.AlreadyExists, gexc.FailedPrecondition):
        assert not retry._predicate(error(final))  # a lost race is an answer, not a fault
    assert isinstance(DEFAULT_RETRY, Retry)
    # Conditional: the same policy, applied only when a precondition makes a repeat harmless.
    assert DEFAULT_RETRY_IF_GENERATION_SPECIFIED.retry_policy is DEFAULT_RETRY
    assert not DEFAULT_RETRY_IF_GENERATION_SPECIFIED.get_retry_policy_if_conditions_met(
        query_params={}
    )
    assert DEFAULT_RETRY_IF_GENERATION_SPECIFIED.get_retry_policy_if_conditions_met(
        query_params={"ifGenerationMatch": 0}
    )
    assert DEFAULT_RETRY._predicate(error(gexc.ServiceUnavailable))
    assert DEFAULT_RETRY._predicate(requests.ConnectionError("reset"))
    # Full jitter: each pause is uniform in [0, cap], the cap doubling up to a maximum.
    # The generator draws from the global random: seed it for this check only
    # (a seed left behind would make every later "unique" test value repeat
    # from one run to the next).
    state = random.getstate()
    try:
        random.seed(8)
        sleeps = exponential_sleep_generator(retry._initial, retry._maximum, retry._multiplier)
        drawn = [next(sleeps) for _ in range(12)]
    finally:
        random.setstate(state)
    caps = [min(retry._initial * retry._multiplier**i, retry._maximum) for i in range(12)]
    assert all(0 <= d <= c for d, c in zip(drawn, caps, strict=True))
    assert len(set(drawn)) == len(drawn)
    assert any(d < c / 2 for d, c in zip(drawn, caps, strict=True))


@pytest.mark.nix
@pytest.mark.integration
def test_cold_and_warm_pulls_through_flaky_stores_succeed_with_one_build(
    nix: None, tmp_path: Path, gcs: GcsEmulator, firestore: FirestoreEmulator
) -> None:
    storage = start_fault_proxy(f"127.0.0.1:{gcs.port}", every=3)
    metadata = start_grpc_fault_proxy(firestore.host, every=4)
    stack = start_serverless(
        tmp_path / "stack",
        gcs=gcs,
        firestore=firestore,
        pkgs_path=PKGS,
        manifest_processes=2,
        extra_env={"STORAGE_EMULATOR_HOST": storage.url, "FIRESTORE_EMULATOR_HOST": metadata.host},
    )
    try:
        url = f"{stack.url}/v2/shell/libfoo/manifests/latest"
        with concurrent.futures.ThreadPoolExecutor(PULLS) as pool:
            answers = list(
                pool.map(
                    lambda _: requests.get(url, headers={"Accept": DOCKER}, timeout=300),
                    range(PULLS),
                )
            )
        assert [a.status_code for a in answers] == [200] * PULLS, answers[0].text
        assert len({a.content for a in answers}) == 1
        digests = manifest_digests(answers[0].content)
        warm = [requests.head(url, headers={"Accept": DOCKER}, timeout=60) for _ in range(10)]
        for digest in digests:
            warm += [
                requests.head(f"{stack.url}/v2/shell/libfoo/blobs/{digest}", timeout=60),
                requests.get(
                    f"{stack.url}/v2/shell/libfoo/blobs/{digest}",
                    timeout=60,
                    allow_redirects=False,
                ),
            ]
        assert sorted({a.status_code for a in warm}) in ([200, 307], [200]), warm

        # Faults of every kind reached both stores, writes among them.
        injected = storage.injected()
        assert {p.outcome for p in injected} == set(FAULTS)
        assert any(p.method == "POST" for p in injected)
        calls = {c.method for c in metadata.injected()}
        assert {"Commit", "BatchGetDocuments"} <= calls
        # Every failed storage request was sent again and then succeeded.
        log = storage.log
        for index, failed in enumerate(log):
            if failed.outcome != "ok":
                again = [
                    p
                    for p in log[index + 1 :]
                    if (p.method, p.path) == (failed.method, failed.path)
                ]
                assert any(p.outcome == "ok" for p in again), failed

        # No duplicate build: one job run, one Nix realisation.
        assert stack.cloud_run.run_count == 1
        assert len(stack.nix_builds()) == 1
        storage.enabled = metadata.enabled = False
        target = serverless_target(stack, tmp_path / "unused")
        assert target.missing_blobs() == []
        for digest in digests:
            body = requests.get(f"{stack.url}/v2/shell/libfoo/blobs/{digest}", timeout=60).content
            assert "sha256:" + hashlib.sha256(body).hexdigest() == digest
        print(
            f"\ninjected {len(injected)} storage faults in {len(log)} requests, "
            f"{len(metadata.injected())} Firestore faults in {len(metadata.log)} calls; "
            f"{stack.cloud_run.run_count} job run"
        )
    finally:
        stack.stop()
        storage.stop()
        metadata.stop()
