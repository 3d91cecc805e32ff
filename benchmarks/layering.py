"""Benchmark: how many bytes do clients download with each layering algorithm?

Usage::

    python benchmarks/layering.py SCENARIO.json.gz [...] [--budgets 5,10,20,40,94]

A scenario (see shared/data/layering/README.md) is a dependency graph, popularity data
and a list of image pulls. For each layer budget and each algorithm this replays the
pulls with one client that keeps every layer it has downloaded (a layer is identified by
its exact set of store paths, as a digest would be) and prints:

- score: bytes downloaded / the lower bound (the size of the union of all pulled
  closures, i.e. every store path downloaded exactly once); 1.000 is perfect;
- 20 clients: the same ratio summed over 20 clients that each pull a random 5-image
  subset (fixed seed), in scenario order;
- layers/img: the mean number of layers per pulled image;
- stored: distinct layers the registry ends up storing;
- ms/img: the algorithm's mean time per image.

After each table, the time of one call on the biggest closure the scenario holds (the
union of every pulled image's roots) with the default budget, with and without the
popularity data: the median of 21 runs, and the fastest (shared machines are noisy).

Every layering is checked: an exact partition of the image's closure, 1 to budget layers.
The algorithms are ours (`layering.split_layers`, with and without popularity) and two
simple references: one layer per image, and the largest paths each in a layer with the
rest merged into one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "shared"))

from layering import DEFAULT_BUDGET, PathInfo, split_layers
from layering.graph import closure

Layering = Callable[[Mapping[str, PathInfo], Sequence[str], int], list[list[str]]]
BUDGETS = (5, 10, 20, 40, 94)
CLIENTS, IMAGES_PER_CLIENT, SEED = 20, 5, 20240601


@dataclass(frozen=True)
class Scenario:
    name: str
    graph: dict[str, PathInfo]
    popularity: dict[str, int]
    pulls: list[tuple[str, ...]]  # the roots of each pulled image, in pull order


@dataclass(frozen=True)
class Result:
    score: float
    clients_score: float
    layers_per_image: float
    stored: int
    ms_per_image: float


def load(path: Path) -> Scenario:
    with gzip.open(path, "rt") as f:
        raw = json.load(f)
    graph = {
        p: PathInfo(nar_size=n["narSize"], references=tuple(n["references"]))
        for p, n in raw["nodes"].items()
    }
    pulls = [tuple(image["roots"]) for image in raw["images"]]
    return Scenario(raw["name"], graph, dict(raw.get("popularity", {})), pulls)


def one_layer(graph: Mapping[str, PathInfo], roots: Sequence[str], budget: int) -> list[list[str]]:
    return [closure(graph, roots)]


def largest_then_rest(
    graph: Mapping[str, PathInfo], roots: Sequence[str], budget: int
) -> list[list[str]]:
    paths = sorted(closure(graph, roots), key=lambda p: (-graph[p].nar_size, p))
    if len(paths) <= budget:
        return [[p] for p in paths]
    return [[p] for p in paths[: budget - 1]] + [sorted(paths[budget - 1 :])]


def check(layers: list[list[str]], expected: list[str], budget: int) -> None:
    if not 1 <= len(layers) <= budget:
        raise AssertionError(f"{len(layers)} layers for a budget of {budget}")
    flat = sorted(p for layer in layers for p in layer)
    if flat != expected:
        raise AssertionError("the layers are not an exact partition of the closure")


def replay(
    scenario: Scenario, layering: Layering, budget: int, client_sets: list[list[int]]
) -> Result:
    graph = scenario.graph
    per_pull: list[list[frozenset[str]]] = []
    cache: dict[tuple[str, ...], list[frozenset[str]]] = {}
    seconds, runs = 0.0, 0
    for roots in scenario.pulls:
        # Run the algorithm for every pull (repeats included): the time is per image.
        start = time.perf_counter()
        layers = layering(graph, roots, budget)
        seconds += time.perf_counter() - start
        runs += 1
        check(layers, closure(graph, roots), budget)
        frozen = [frozenset(layer) for layer in layers]
        if roots in cache and cache[roots] != frozen:
            raise AssertionError("the same image gave different layers")
        cache[roots] = frozen
        per_pull.append(frozen)

    def size(layer: frozenset[str]) -> int:
        return sum(graph[p].nar_size for p in layer)

    def downloaded(indices: Sequence[int]) -> tuple[int, int]:
        have: set[frozenset[str]] = set()
        union: set[str] = set()
        total = 0
        for i in indices:
            for layer in per_pull[i]:
                if layer not in have:
                    have.add(layer)
                    total += size(layer)
                union.update(layer)
        return total, sum(graph[p].nar_size for p in union)

    got, bound = downloaded(range(len(per_pull)))
    client_got = client_bound = 0
    for indices in client_sets:
        g, b = downloaded(indices)
        client_got += g
        client_bound += b
    stored = {layer for layers in per_pull for layer in layers}
    return Result(
        score=got / bound,
        clients_score=client_got / client_bound,
        layers_per_image=sum(len(ls) for ls in per_pull) / len(per_pull),
        stored=len(stored),
        ms_per_image=1000 * seconds / runs,
    )


def algorithms(scenario: Scenario) -> dict[str, Layering]:
    def ours(graph: Mapping[str, PathInfo], roots: Sequence[str], budget: int) -> list[list[str]]:
        return split_layers(graph, roots, budget, scenario.popularity)

    def ours_no_pop(
        graph: Mapping[str, PathInfo], roots: Sequence[str], budget: int
    ) -> list[list[str]]:
        return split_layers(graph, roots, budget)

    return {
        "ours (popularity)": ours,
        "ours (no popularity)": ours_no_pop,
        "largest each + rest": largest_then_rest,
        "one layer": one_layer,
    }


def client_subsets(pulls: int) -> list[list[int]]:
    rng = random.Random(SEED)
    size = min(IMAGES_PER_CLIENT, pulls)
    return [sorted(rng.sample(range(pulls), size)) for _ in range(CLIENTS)]


def report(scenario: Scenario, budgets: Sequence[int]) -> str:
    sizes = {len(closure(scenario.graph, roots)) for roots in scenario.pulls}
    lines = [
        f"## {scenario.name}: {len(scenario.pulls)} pulls, {len(scenario.graph)} paths, "
        f"{min(sizes)}-{max(sizes)} paths per image",
        "",
        "| algorithm | budget | score | 20 clients | layers/img | stored | ms/img |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    client_sets = client_subsets(len(scenario.pulls))
    for name, layering in algorithms(scenario).items():
        for budget in budgets:
            r = replay(scenario, layering, budget, client_sets)
            lines.append(
                f"| {name} | {budget} | {r.score:.3f} | {r.clients_score:.3f} | "
                f"{r.layers_per_image:.1f} | {r.stored} | {r.ms_per_image:.2f} |"
            )
    lines += ["", timing(scenario)]
    return "\n".join(lines)


def timing(scenario: Scenario, runs: int = 21) -> str:
    roots = sorted({r for pull in scenario.pulls for r in pull})
    size = len(closure(scenario.graph, roots))
    parts = []
    for label, popularity in (("with", scenario.popularity), ("without", None)):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            split_layers(scenario.graph, roots, DEFAULT_BUDGET, popularity)
            times.append(time.perf_counter() - start)
        parts.append(
            f"{1000 * statistics.median(times):.2f} ms {label} popularity data "
            f"(fastest {1000 * min(times):.2f})"
        )
    return (
        f"Union of all pulled roots: {size} paths, per call (median of {runs}): "
        + "; ".join(parts)
        + "."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    for path in args.scenarios:
        sys.stdout.write(report(load(path), budgets) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
