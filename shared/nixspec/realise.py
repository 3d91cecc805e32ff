"""From an :class:`ImageSpec` to realised store paths and their closure graph.

The steps (command lines in :mod:`nixspec.invocation`):

1. **Resolve** every name in one evaluation. Names that are not found,
   ambiguous, not packages or fail evaluation catchably come back as data.
   When the evaluation dies (``abort``, a missing attribute inside a
   package), the batch is bisected until the guilty names are isolated, so
   the good names still resolve and the bad ones are named; a probe first
   checks that the package set itself loads, so a broken source is not blamed
   on the names. For names that failed evaluation, one more evaluation each
   (without ``tryEval``) recovers Nix's own message: "unfree license",
   "marked as broken", the ``throw`` text.
2. **Realise** the derivations' wanted outputs with ``--keep-going`` under a
   GC root; when some fail, the invalid outputs tell which packages failed.
3. **Closure**: the graph of the realised outputs from one ``path-info``.

Every process shares one :class:`Deadline` (``NIX_TIMEOUT``) and all stderr
tails are kept for the build record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from layering import PathInfo
from nixspec import invocation
from nixspec.errors import NixFailure, PackageErrors, PackageProblem, ProblemKind
from nixspec.graph import parse_path_info
from nixspec.invocation import Resolved
from nixspec.runner import Completed, Deadline, run_nix, tail
from nixspec.spec import ImageSpec

MAX_EXPLAINED = 8  # extra evaluations to recover error messages, at most


@dataclass(frozen=True)
class Realised:
    packages: tuple[Resolved, ...]
    graph: dict[str, PathInfo]

    @property
    def roots(self) -> tuple[str, ...]:
        return tuple(sorted({p for r in self.packages for p in r.out_paths}))


@dataclass
class NixSession:
    """The Nix work of one build. ``log`` collects stderr for the record."""

    spec: ImageSpec
    deadline: Deadline
    allow_unfree: bool = False
    env: Mapping[str, str] | None = None
    log: list[str] = field(default_factory=list)

    def log_tail(self) -> str:
        return tail("\n".join(part for part in self.log if part.strip()))

    def _run(self, argv: Sequence[str]) -> Completed:
        result = run_nix(argv, self.deadline, self.env)
        if result.stderr:
            self.log.append(result.stderr)
        return result

    # -- 1. resolve -------------------------------------------------------
    def resolve(self) -> list[Resolved]:
        resolved, problems = self._evaluate(list(self.spec.packages))
        if problems:
            raise PackageErrors(self._explain(problems), self.log_tail())
        return sorted(resolved, key=lambda r: r.name)

    def _request(
        self, names: Sequence[str], explain: str | None = None, probe: bool = False
    ) -> str:
        return invocation.resolve_request(
            self.spec, names, allow_unfree=self.allow_unfree, explain=explain, probe=probe
        )

    def _evaluate(self, names: list[str]) -> tuple[list[Resolved], list[PackageProblem]]:
        result = self._run(invocation.eval_argv(self._request(names)))
        if result.returncode == 0:
            return invocation.parse_resolution(result.stdout)
        message = invocation.error_message(result.stderr)
        if len(names) == len(self.spec.packages):
            self._probe_source()
        if len(names) == 1:
            return [], [PackageProblem(names[0], ProblemKind.EVAL_ERROR, names[0], message)]
        middle = len(names) // 2
        left = self._evaluate(names[:middle])
        right = self._evaluate(names[middle:])
        return left[0] + right[0], left[1] + right[1]

    def _probe_source(self) -> None:
        result = self._run(invocation.eval_argv(self._request([], probe=True)))
        if result.returncode != 0:
            raise NixFailure(
                "the package set cannot be loaded: " + invocation.error_message(result.stderr),
                self.log_tail(),
            )

    def _explain(self, problems: list[PackageProblem]) -> list[PackageProblem]:
        explained: list[PackageProblem] = []
        budget = MAX_EXPLAINED
        for problem in problems:
            if problem.kind is ProblemKind.EVAL_ERROR and not problem.message and budget > 0:
                budget -= 1
                result = self._run(invocation.eval_argv(self._request([], explain=problem.name)))
                if result.returncode != 0:
                    message = invocation.error_message(result.stderr)
                    explained.append(replace(problem, message=message))
                    continue
            explained.append(problem)
        return explained

    # -- 2. realise -------------------------------------------------------
    def realise(self, resolved: Sequence[Resolved], gcroot: Path) -> None:
        result = self._run(invocation.realise_argv(resolved, gcroot))
        if result.returncode == 0:
            return
        paths = [p for r in resolved for p in r.out_paths]
        check = self._run(invocation.invalid_paths_argv(paths))
        invalid = set(check.stdout.split())
        failed = [r for r in resolved if invalid.intersection(r.out_paths)]
        if not failed:
            raise NixFailure(
                "nix-store --realise failed: " + invocation.error_message(result.stderr),
                self.log_tail(),
            )
        message = invocation.error_message(result.stderr)
        raise PackageErrors(
            [
                PackageProblem(r.name, ProblemKind.BUILD_FAILED, r.attr_path, message)
                for r in failed
            ],
            self.log_tail(),
        )

    # -- 3. closure -------------------------------------------------------
    def closure(self, paths: Sequence[str]) -> dict[str, PathInfo]:
        result = self._run(invocation.path_info_argv(paths))
        if result.returncode != 0:
            raise NixFailure(
                "nix path-info failed: " + invocation.error_message(result.stderr),
                self.log_tail(),
            )
        return parse_path_info(result.stdout)

    def build(self, gcroot: Path) -> Realised:
        resolved = self.resolve()
        self.realise(resolved, gcroot)
        packages = tuple(resolved)
        roots = sorted({p for r in packages for p in r.out_paths})
        return Realised(packages=packages, graph=self.closure(roots))
