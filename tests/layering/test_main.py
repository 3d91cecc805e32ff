"""`python -m layering`: JSON Lines in, JSON Lines out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from layering.__main__ import answer, main

A = "/nix/store/" + "a" * 32 + "-a-1"
B = "/nix/store/" + "b" * 32 + "-b-1"
C = "/nix/store/" + "c" * 32 + "-c-1"
NODES = {
    A: {"narSize": 100, "references": [B, C, A]},
    B: {"narSize": 300, "references": [C]},
    C: {"narSize": 200, "references": []},
}


def _request(**extra: Any) -> str:
    return json.dumps({"nodes": NODES, "roots": [A], "budget": 2, **extra})


def test_answers_one_line_per_request_and_skips_blank_lines() -> None:
    popularity = {"c-1": 7, "a-1": 1}  # c is the only platform: its stack is just c
    stdin = io.StringIO(_request() + "\n\n" + _request(popularity=popularity, budget=5) + "\n")
    stdout = io.StringIO()
    assert main(stdin, stdout) == 0
    lines = stdout.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["layers"] == [[B], sorted([A, C])]
    assert second["layers"] == [[C], [B], [A]]  # popularity, then referrers, first
    assert all(isinstance(x["seconds"], float) and x["seconds"] >= 0 for x in (first, second))


def test_budget_defaults_to_the_default_budget() -> None:
    request = json.dumps({"nodes": NODES, "roots": [A]})
    assert len(answer(request)["layers"]) == 3


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "Expecting value"),
        ("[1, 2]", "a request must be a JSON object"),
        (json.dumps({"roots": [A]}), '"nodes" must be an object'),
        (json.dumps({"nodes": NODES, "roots": A}), '"roots" must be a list'),
        (json.dumps({"nodes": NODES, "roots": [A], "budget": 0}), "budget must be at least 1"),
        (json.dumps({"nodes": NODES, "roots": ["/nix/store/x"]}), "is not in the graph"),
        (json.dumps({"nodes": {A: {"narSize": "1"}}, "roots": [A]}), "narSize of"),
        (json.dumps({"nodes": {A: {"references": "x"}}, "roots": [A]}), "references of"),
        (_request(popularity={"a-1": "many"}), '"popularity" must be an object'),
    ],
)
def test_bad_requests_get_an_error_line(line: str, message: str) -> None:
    result = answer(line)
    assert set(result) == {"error"}
    assert message in result["error"]


def test_runs_as_a_module() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared"
    proc = subprocess.run(
        [sys.executable, "-m", "layering"],
        input=_request() + "\n" + "{}\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=shared,
        timeout=60,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["layers"] == [[B], sorted([A, C])]
    assert "error" in lines[1]
