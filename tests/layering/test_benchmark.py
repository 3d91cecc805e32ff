"""The benchmark's replay and checks, on a tiny scenario (the benchmark itself is no test)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from benchmarks.layering import Scenario, check, client_subsets, one_layer, replay
from layering import PathInfo

A, B, C = (f"/nix/store/{ch * 32}-{ch}-1" for ch in "abc")
GRAPH = {A: PathInfo(10, (C,)), B: PathInfo(20, (C,)), C: PathInfo(70, ())}
SCENARIO = Scenario("tiny", GRAPH, {}, [(A,), (B,), (A,)])


def test_one_layer_downloads_the_shared_path_twice() -> None:
    result = replay(SCENARIO, one_layer, 5, client_subsets(len(SCENARIO.pulls)))
    assert result.score == pytest.approx((80 + 90) / 100)
    assert result.stored == 2
    assert result.layers_per_image == 1


def test_a_layering_that_drops_a_path_is_caught() -> None:
    def lossy(graph: Mapping[str, PathInfo], roots: Sequence[str], budget: int) -> list[list[str]]:
        return [[roots[0]]]

    with pytest.raises(AssertionError, match="not an exact partition"):
        replay(SCENARIO, lossy, 5, client_subsets(3))


def test_a_layering_over_budget_is_caught() -> None:
    with pytest.raises(AssertionError, match="3 layers for a budget of 2"):
        check([[A], [B], [C]], sorted([A, B, C]), 2)
