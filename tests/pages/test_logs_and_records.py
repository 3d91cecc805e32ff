"""One pull's logs join its build's logs; build records say what happened.

On both stacks a pull carries a trace header (W3C ``traceparent``, or
Google's ``X-Cloud-Trace-Context``). The manifest-serving process and the
builder (a subprocess of the embedded server; a Cloud Run job task on the
serverless stack, logging to its own file) both write Cloud Logging JSON
lines on stdout, and the test finds lines from each side carrying that
trace (``logging.googleapis.com/trace``, as
``projects/<project>/traces/<id>`` where a project is configured) and the
same labels: ``image`` and ``build_id``. The build records of a success and
of a failure keep state, timings per stage, closure size, layer count and
the tail of Nix's output.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from metastore.records import BuildState
from tests.support.crash import DOCKER, Target, manifest_digests, running_target

pytestmark = [pytest.mark.nix, pytest.mark.integration]

TRACE_FIELD = "logging.googleapis.com/trace"
LABELS_FIELD = "logging.googleapis.com/labels"
STAGES = ("resolve", "realise", "closure", "layering", "layers")


@pytest.fixture(scope="module", params=["embedded", "serverless"])
def target(
    request: pytest.FixtureRequest, nix: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(f"observability-{request.param}")
    with running_target(request.param, root, request, {}) as started:
        yield started


def json_lines(paths: list[Path]) -> list[dict[str, Any]]:
    lines = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    return lines


def traced(lines: list[dict[str, Any]], trace: str, logger: str) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if str(line.get(TRACE_FIELD, "")).endswith(trace) and line["logger"].startswith(logger)
    ]


def check_joined(target: Target, trace: str, image: str, build_id: str) -> None:
    request_side = traced(json_lines(list(target.request_logs)), trace, "registry.")
    builder_side = traced(json_lines(target.builder_logs()), trace, "builder_job")
    assert request_side, "no request log line carries the trace"
    assert builder_side, "no builder log line carries the trace"
    labels = {"image": f"{image}:latest", "build_id": build_id}
    for line in request_side + builder_side:
        assert line[LABELS_FIELD] == labels, line
        assert line["severity"] in ("INFO", "WARNING", "ERROR"), line
        assert line["message"], line
        if target.name == "serverless":  # GOOGLE_CLOUD_PROJECT is set there
            assert line[TRACE_FIELD] == f"projects/demo-nixery/traces/{trace}"


def test_a_pull_and_its_build_share_a_trace_and_labels_and_a_full_record(target: Target) -> None:
    image, trace = "multioutput/hello", secrets.token_hex(16)
    answer = requests.get(
        f"{target.url}/v2/{image}/manifests/latest",
        headers={"Accept": DOCKER, "traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"},
        timeout=300,
    )
    assert answer.status_code == 200, answer.text
    [build] = target.builds_of(f"{image}:latest")
    check_joined(target, trace, image, build.build_id)

    assert build.state is BuildState.SUCCEEDED
    assert set(STAGES) <= set(build.timings)
    assert all(build.timings[stage] >= 0 for stage in STAGES)
    assert build.closure_size > 0
    assert build.layer_count == len(manifest_digests(answer.content)) - 1  # minus the config
    assert build.manifest_digest == answer.headers["Docker-Content-Digest"]
    assert build.finished_at is not None and build.finished_at >= build.created_at
    assert build.error is None


def test_a_failed_pull_names_its_build_page_and_the_record_keeps_the_reason(
    target: Target,
) -> None:
    image, trace = "broken", secrets.token_hex(16)
    answer = requests.get(
        f"{target.url}/v2/{image}/manifests/latest",
        headers={"Accept": DOCKER, "X-Cloud-Trace-Context": f"{trace}/1;o=1"},
        timeout=300,
    )
    assert answer.status_code in (404, 503), answer.text
    [error] = answer.json()["errors"]
    [build] = target.builds_of(f"{image}:latest")
    url = f"{target.url}/builds/{build.build_id}"
    assert error["detail"]["build"] == build.build_id
    assert error["detail"]["url"] == url
    assert error["message"].endswith(f"(build log: {url})")
    check_joined(target, trace, image, build.build_id)

    assert build.state is BuildState.FAILED
    assert build.error is not None and build.error.code == error["code"]
    assert "resolve" in build.timings
    assert build.finished_at is not None
    assert "broken" in build.log_tail  # the tail of Nix's output says why
    page = requests.get(url, timeout=30)
    assert page.status_code == 200
    assert build.build_id in page.text
