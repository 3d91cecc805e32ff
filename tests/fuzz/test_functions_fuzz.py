"""Both functions, in this process, under random and mutated requests.

The volume part of the fuzz suite: thousands of requests through
functions-framework's test clients (the same ``create_app`` Cloud Functions
runs), against a registry seeded with one image (``hello``) and its blobs so
that hits, digests, ``If-None-Match`` and ``Range`` are reached, not only
rejections. Every answer must pass :func:`tests.fuzz.harness.check_answer`;
no log line may show an exception escaping a handler; every name that
reached the (recorded) Nix invocation must be an attribute path inside the
JSON request.

Examples per test scale with the loaded Hypothesis profile
(``--hypothesis-profile=fuzz-long`` for a long local run).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import mutator, strategies
from tests.fuzz.harness import Functions, check_answer, unhandled
from tests.fuzz.seed import CONFIG_DIGEST, KNOWN, LAYER, LAYER_BYTES, MANIFESTS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_+-]*)*")
#: Examples per Hypothesis test and requests of the mutation fuzzer: scaled
#: by the loaded profile's ``max_examples`` (100 by default).
SCALE = settings().max_examples
FUZZ = settings(
    max_examples=SCALE * 2,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def send(functions: Functions, request: strategies.FuzzRequest) -> None:
    response = functions.request(request.method, request.path, request.headers, request.body)
    check_answer(request.method, request.path, response)
    assert unhandled(functions.log) == [], request


def test_seeded_image_is_served(functions: Functions) -> None:
    """The fuzz reaches real answers: the seed is a hit, its blobs stream."""
    manifest = functions.request("GET", "/v2/hello/manifests/latest")
    assert manifest.status_code == 200, manifest.get_data()
    assert manifest.get_data() == MANIFESTS[0].data
    blob = functions.request("GET", f"/v2/x/blobs/{LAYER.digest}", {"Range": "bytes=0-9"})
    assert blob.status_code == 206
    assert blob.get_data() == LAYER_BYTES[:10]


@FUZZ
@given(st.lists(strategies.requests(KNOWN), min_size=1, max_size=3))
def test_any_request_gets_a_spec_answer(
    functions: Functions, batch: list[strategies.FuzzRequest]
) -> None:
    for request in batch:
        send(functions, request)


@FUZZ
@given(
    method=st.sampled_from(("GET", "HEAD")),
    path=st.sampled_from(
        [
            "/v2/hello/manifests/latest",
            *(f"/v2/hello/manifests/{m.digest}" for m in MANIFESTS),
            *(f"/v2/hello/blobs/{d}" for d in (LAYER.digest, CONFIG_DIGEST)),
        ]
    ),
    headers=strategies.headers(KNOWN),
)
def test_real_pulls_with_fuzzed_headers(
    functions: Functions, method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    """Requests for things that exist, so Accept, Range and If-None-Match are
    parsed for real; the answer is a success or a spec error."""
    send(functions, strategies.FuzzRequest(method, path, headers, b""))


def test_names_reach_nix_only_as_json(functions: Functions) -> None:
    """Every name that became a build reached Nix as a string inside the JSON
    request (checked argv by argv by the recording launcher), and only names
    of the attribute-path grammar got that far."""

    @FUZZ
    @given(name=strategies.names(), tag=st.one_of(st.just("latest"), strategies.tag))
    def pull(name: str, tag: str) -> None:
        send(functions, strategies.FuzzRequest("GET", f"/v2/{name}/manifests/{tag}", [], b""))

    pull()
    assert functions.launcher.nix_calls, "no fuzzed name was valid enough to build"
    assert functions.launcher.names
    bad = [name for name in functions.launcher.names if not PACKAGE.fullmatch(name)]
    assert bad == []


def test_mutated_requests_get_spec_answers(functions: Functions) -> None:
    """Volume: valid requests mutated one to three times, from one seed
    (``NIXERY_FUZZ_SEED`` replays a run)."""
    seed = int(os.environ.get("NIXERY_FUZZ_SEED", "0")) or int(time.time())
    for index, request in enumerate(mutator.generate(seed, SCALE * 100, KNOWN)):
        try:
            send(functions, request)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed}, request {index}: {exc}") from exc
