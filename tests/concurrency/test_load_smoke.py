"""A short run of the sustained-load benchmark (benchmarks/load.py) against
the embedded registry: the script works and reports what it promises. The
10-minute runs are not part of CI; their results are in the closing notes."""

from __future__ import annotations

import pytest

from benchmarks.load import percentiles, render, run_load, slope_per_minute
from tests.support.nixery_server import NixeryServer

SECONDS, RATE = 3.0, 5.0


@pytest.mark.nix
@pytest.mark.integration
def test_a_short_load_run_reports_pulls_latency_and_memory(shared_registry: NixeryServer) -> None:
    report = run_load(
        shared_registry.url,
        "hello",
        {"nixery serve": shared_registry.process.pid},
        seconds=SECONDS,
        rate=RATE,
        sample_s=1.0,
    )
    assert report.errors == 0, report.error_examples
    assert report.pulls == int(SECONDS * RATE)
    blobs = report.latency_ms["blob GET"]["n"] / report.pulls
    assert blobs >= 2  # the config and at least one layer
    assert report.requests == report.pulls * (2 + blobs)
    for kind in ("manifest HEAD", "manifest GET", "blob GET", "pull"):
        stats = report.latency_ms[kind]
        assert 0 < stats["p50"] <= stats["p90"] <= stats["p99"] <= stats["max"]
    # The server and its gunicorn workers, sampled from the start to the end.
    assert len(report.memory) >= 2
    assert all(mem["peak_mib"] > 0 for mem in report.memory.values())
    assert report.samples[0].at_s == 0 and report.samples[-1].at_s == report.duration_s
    assert report.duration_s >= SECONDS - 1 / RATE  # the last pull starts before the end
    assert "errors 0" in render(report)


def test_percentiles_and_slope() -> None:
    stats = percentiles([0.001 * n for n in range(1, 101)])
    assert (stats["n"], stats["p50"], stats["p99"], stats["max"]) == (100, 51.0, 100.0, 100.0)
    assert percentiles([]) == {}
    assert slope_per_minute([(0, 10.0), (60, 12.0), (120, 14.0)]) == pytest.approx(2.0)
    assert slope_per_minute([(0, 10.0)]) == 0.0
