"""Benchmark: how low can the layering score go when every pull is known in advance?

Usage::

    python benchmarks/layering_limit.py SCENARIO.json.gz [...] [--budgets 5,10] [--rounds 2000]

`benchmarks/layering.py` measures algorithms that see one image at a time, as the
registry does. This one measures what foresight would buy: it knows the whole scenario
(every image and the order of the pulls) and searches for layerings that score well on
it. Nothing it finds is usable by a registry, which cannot know the images it will be
asked for; its score says how much of an algorithm's excess over the ideal (1.0) any
algorithm could remove, so a target below it is out of reach of every layering, not
only of ours.

Atoms
-----
Two store paths held by exactly the same set of images can always share a layer: no
image has one without the other. The search therefore works on atoms, the groups of
paths with the same set of images, and never splits one.

Search
------
1. Greedy carving. Every image starts as one layer. A candidate is a set of atoms:
   each atom alone, and for each atom's set of images T everything the images of T have
   in common (the atoms held by every image of T). Carving a candidate cuts it out of
   the layer that contains it, in every image where it lies strictly inside one layer
   and the budget has room; carving the same candidate everywhere is what makes the
   piece the same layer, downloaded once, in all of them. Each step carves the
   candidate that lowers the replayed bytes most, until none lowers them.
2. Local search. A round perturbs the best layering, carves greedily again and keeps
   the result if it downloads fewer bytes. Half the rounds merge two layers in each of
   three images; the others merge one layer into another in every image that has it.
   Both are drawn from a seeded generator.

The best layering found is replayed through `benchmarks.layering.replay`, the same
metric and the same partition and budget checks as the algorithms there.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "shared"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.layering import Scenario, client_subsets, load, replay
from layering import PathInfo
from layering.graph import closure

Atoms = frozenset[int]  # a layer, as the atoms it holds
Layering = list[list[Atoms]]  # per distinct image, its layers


@dataclass(frozen=True)
class Problem:
    """A scenario seen as atoms: what the search needs and nothing else."""

    images: list[tuple[str, ...]]  # distinct images (their roots), in first-pull order
    pull_order: list[int]  # the pulls, as indices into `images`
    atom_paths: list[list[str]]
    atom_size: list[int]
    image_atoms: list[frozenset[int]]
    candidates: list[Atoms]

    @staticmethod
    def of(scenario: Scenario) -> Problem:
        images: list[tuple[str, ...]] = []
        index: dict[tuple[str, ...], int] = {}
        for roots in scenario.pulls:
            if roots not in index:
                index[roots] = len(images)
                images.append(roots)
        closures = [set(closure(scenario.graph, roots)) for roots in images]
        by_images: dict[frozenset[int], list[str]] = {}
        for path in sorted(set().union(*closures)):
            holders = frozenset(i for i, c in enumerate(closures) if path in c)
            by_images.setdefault(holders, []).append(path)
        holders_of = list(by_images)
        atom_paths = [by_images[h] for h in holders_of]
        atom_size = [sum(scenario.graph[p].nar_size for p in paths) for paths in atom_paths]
        image_atoms = [
            frozenset(a for a, h in enumerate(holders_of) if i in h) for i in range(len(images))
        ]
        candidates = {frozenset([a]) for a in range(len(holders_of))}
        for held_by in holders_of:
            candidates.add(frozenset(a for a, h in enumerate(holders_of) if h >= held_by))
        return Problem(
            images=images,
            pull_order=[index[roots] for roots in scenario.pulls],
            atom_paths=atom_paths,
            atom_size=atom_size,
            image_atoms=image_atoms,
            candidates=sorted(candidates, key=sorted),
        )


class Search:
    """Greedy carving and local search over layerings of one `Problem` at one budget."""

    def __init__(self, problem: Problem, budget: int) -> None:
        self.problem = problem
        self.budget = budget
        self._sizes: dict[Atoms, int] = {}

    def size(self, layer: Atoms) -> int:
        known = self._sizes.get(layer)
        if known is None:
            known = self._sizes[layer] = sum(self.problem.atom_size[a] for a in layer)
        return known

    def cost(self, layering: Layering) -> int:
        """Bytes one client downloads pulling the scenario in order."""
        have: set[Atoms] = set()
        total = 0
        for i in self.problem.pull_order:
            for layer in layering[i]:
                if layer not in have:
                    have.add(layer)
                    total += self.size(layer)
        return total

    def carved(self, layering: Layering, piece: Atoms) -> Layering | None:
        """`piece` cut out wherever it lies strictly inside a layer and there is room."""
        result: Layering | None = None
        for i, layers in enumerate(layering):
            if len(layers) >= self.budget or not piece <= self.problem.image_atoms[i]:
                continue
            for k, layer in enumerate(layers):
                if piece < layer:
                    if result is None:
                        result = list(layering)
                    result[i] = [*layers[:k], layer - piece, *layers[k + 1 :], piece]
                    break
        return result

    def greedy(self, layering: Layering) -> tuple[int, Layering]:
        current = self.cost(layering)
        while True:
            best: tuple[int, Layering] | None = None
            for piece in self.problem.candidates:
                carved = self.carved(layering, piece)
                if carved is None:
                    continue
                cost = self.cost(carved)
                if best is None or cost < best[0]:
                    best = (cost, carved)
            if best is None or best[0] >= current:
                return current, layering
            current, layering = best

    def run(self, rounds: int, seed: int) -> tuple[int, int, Layering]:
        """(bytes after greedy carving, bytes after local search, the best layering)."""
        start: Layering = [[atoms] for atoms in self.problem.image_atoms]
        first, best = self.greedy(start)
        cost = first
        rng = random.Random(seed)
        for _ in range(rounds):
            perturb = self.merge_in_some_images if rng.random() < 0.5 else self.dissolve
            trial_cost, trial = self.greedy(perturb(best, rng))
            if trial_cost < cost:
                cost, best = trial_cost, trial
        return first, cost, best

    @staticmethod
    def merge_in_some_images(layering: Layering, rng: random.Random) -> Layering:
        """Two layers of each of three images merged."""
        trial = list(layering)
        for i in rng.sample(range(len(trial)), min(3, len(trial))):
            layers = trial[i]
            if len(layers) < 2:
                continue
            a, b = rng.sample(range(len(layers)), 2)
            kept = [layer for k, layer in enumerate(layers) if k not in (a, b)]
            trial[i] = [*kept, layers[a] | layers[b]]
        return trial

    @staticmethod
    def dissolve(layering: Layering, rng: random.Random) -> Layering:
        """One layer merged into another layer in every image that has it.

        Merging a shared layer in one image only makes that image download it again;
        undoing it everywhere lets the carving try another cut for all of them.
        """
        trial = list(layering)
        piece = rng.choice(rng.choice(trial))
        for i, layers in enumerate(trial):
            if piece in layers and len(layers) >= 2:
                others = [layer for layer in layers if layer != piece]
                k = rng.randrange(len(others))
                trial[i] = [*others[:k], *others[k + 1 :], others[k] | piece]
        return trial

    def as_paths(self, layering: Layering) -> dict[tuple[str, ...], list[list[str]]]:
        atom_paths = self.problem.atom_paths
        return {
            roots: [sorted(p for a in layer for p in atom_paths[a]) for layer in layers]
            for roots, layers in zip(self.problem.images, layering, strict=True)
        }


def limit(scenario: Scenario, budget: int, rounds: int, seed: int) -> tuple[float, float]:
    """(greedy score, local-search score), the latter replayed by the layering benchmark."""
    problem = Problem.of(scenario)
    search = Search(problem, budget)
    first, _, best = search.run(rounds, seed)
    layers_of = search.as_paths(best)

    def foreseen(
        graph: Mapping[str, PathInfo], roots: Sequence[str], budget: int
    ) -> list[list[str]]:
        return layers_of[tuple(roots)]

    bound = sum(problem.atom_size)
    result = replay(scenario, foreseen, budget, client_subsets(len(scenario.pulls)))
    return first / bound, result.score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scenarios", nargs="+", type=Path)
    parser.add_argument("--budgets", default="5,10,20")
    parser.add_argument("--rounds", type=int, default=2000, help="local-search rounds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    for path in args.scenarios:
        scenario = load(path)
        lines = [
            f"## {scenario.name}: every pull known in advance, {args.rounds} rounds, "
            f"seed {args.seed}",
            "",
            "| budget | greedy carving | + local search | seconds |",
            "|---:|---:|---:|---:|",
        ]
        for budget in budgets:
            started = time.perf_counter()
            greedy, searched = limit(scenario, budget, args.rounds, args.seed)
            took = time.perf_counter() - started
            lines.append(f"| {budget} | {greedy:.3f} | {searched:.3f} | {took:.0f} |")
        sys.stdout.write("\n".join(lines) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
