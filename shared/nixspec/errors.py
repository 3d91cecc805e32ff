"""Typed failures of the Nix side.

::

    NixError                      anything that stops an image from being built
    ├── PackageErrors             some names cannot become packages (one entry
    │                             per name: not-found, ambiguous, not-a-package,
    │                             eval-error, build-failed)
    ├── NixTimeout                NIX_TIMEOUT expired; the process tree was killed
    └── NixFailure                Nix itself failed for another reason (store,
                                  network, a crash), with the stderr tail

``PackageErrors`` are the user's to fix (a typo, an unfree package) and are
answered 404 with every problem listed; the other two are the registry's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class ProblemKind(StrEnum):
    NOT_FOUND = "not-found"
    AMBIGUOUS = "ambiguous"
    NOT_A_PACKAGE = "not-a-package"
    EVAL_ERROR = "eval-error"
    BUILD_FAILED = "build-failed"


@dataclass(frozen=True)
class PackageProblem:
    name: str
    kind: ProblemKind
    attr_path: str = ""
    message: str = ""
    candidates: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        what = {
            ProblemKind.NOT_FOUND: "not found",
            ProblemKind.AMBIGUOUS: "ambiguous, candidates: " + ", ".join(self.candidates),
            ProblemKind.NOT_A_PACKAGE: f"{self.attr_path or self.name} is not a package",
            ProblemKind.EVAL_ERROR: "evaluation failed",
            ProblemKind.BUILD_FAILED: "build failed",
        }[self.kind]
        detail = f": {self.message}" if self.message else ""
        return f"{self.name}: {what}{detail}"


class NixError(Exception):
    """Base of every Nix-side failure; ``log_tail`` is kept for the build record."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class PackageErrors(NixError):
    def __init__(self, problems: Sequence[PackageProblem], log_tail: str = "") -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.name))
        super().__init__("; ".join(p.describe() for p in self.problems), log_tail)


class NixTimeout(NixError):
    pass


class NixFailure(NixError):
    pass
