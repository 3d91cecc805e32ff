"""The foresight benchmark's search, on tiny scenarios whose best layering is known."""

from __future__ import annotations

import pytest

from benchmarks.layering import Scenario
from benchmarks.layering_limit import Problem, Search, limit
from layering import PathInfo

A, B, C, D = (f"/nix/store/{ch * 32}-{ch}-1" for ch in "abcd")
# A and B each need C; D stands alone.
GRAPH = {A: PathInfo(10, (C,)), B: PathInfo(20, (C,)), C: PathInfo(70, ()), D: PathInfo(5, ())}
SHARED = Scenario("shared", GRAPH, {}, [(A,), (B,), (A,), (B, D)])


def test_atoms_group_paths_held_by_the_same_images() -> None:
    problem = Problem.of(SHARED)
    assert problem.images == [(A,), (B,), (B, D)]
    assert problem.pull_order == [0, 1, 0, 2]
    groups = sorted(problem.atom_paths)
    assert groups == [[A], [B], [C], [D]]
    held = {
        tuple(paths): sorted(i for i, atoms in enumerate(problem.image_atoms) if a in atoms)
        for a, paths in enumerate(problem.atom_paths)
    }
    assert held[(C,)] == [0, 1, 2]
    assert held[(B,)] == [1, 2]


def test_foresight_finds_the_perfect_layering_when_the_budget_allows_it() -> None:
    # [C] [A], then [C] [B], then [C] [B] [D]: every path downloaded once.
    greedy, searched = limit(SHARED, 3, rounds=20, seed=1)
    assert greedy == pytest.approx(1.0)
    assert searched == pytest.approx(1.0)


def test_a_tight_budget_keeps_the_score_above_one() -> None:
    # Two layers: the third image cannot keep [C], [B] and [D] apart. The best is
    # [C] [A]; [C] [B]; [C] [B, D]: B is downloaded twice (20 bytes). Sharing [B] instead
    # costs C (70) again, and so does one layer [B, C] shared by the last two images.
    greedy, searched = limit(SHARED, 2, rounds=50, seed=1)
    bound = 10 + 20 + 70 + 5
    assert searched == pytest.approx((bound + 20) / bound)
    assert searched <= greedy


def test_one_layer_per_image_is_all_a_budget_of_one_allows() -> None:
    _, searched = limit(SHARED, 1, rounds=5, seed=1)
    assert searched == pytest.approx((80 + 90 + 95) / 105)


def test_local_search_only_keeps_improvements() -> None:
    search = Search(Problem.of(SHARED), 2)
    first, best, layering = search.run(rounds=30, seed=3)
    assert best <= first
    assert search.cost(layering) == best
    assert all(len(layers) <= 2 for layers in layering)
