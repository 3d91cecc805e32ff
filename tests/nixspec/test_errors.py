"""Typed Nix-side failures (`nixspec.errors`)."""

from __future__ import annotations

import pytest

from nixspec.errors import (
    NixError,
    NixFailure,
    NixTimeout,
    PackageErrors,
    PackageProblem,
    ProblemKind,
)


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        pytest.param(PackageProblem("hullo", ProblemKind.NOT_FOUND), "hullo: not found", id="nf"),
        pytest.param(
            PackageProblem("foo", ProblemKind.AMBIGUOUS, candidates=("Foo", "foo")),
            "foo: ambiguous, candidates: Foo, foo",
            id="ambiguous",
        ),
        pytest.param(
            PackageProblem("lib", ProblemKind.NOT_A_PACKAGE, attr_path="lib.strings"),
            "lib: lib.strings is not a package",
            id="not-a-package-attr",
        ),
        pytest.param(
            PackageProblem("lib", ProblemKind.NOT_A_PACKAGE),
            "lib: lib is not a package",
            id="not-a-package-name",
        ),
        pytest.param(
            PackageProblem("unrar", ProblemKind.EVAL_ERROR, message="unfree license"),
            "unrar: evaluation failed: unfree license",
            id="eval-error",
        ),
        pytest.param(
            PackageProblem("broken", ProblemKind.BUILD_FAILED),
            "broken: build failed",
            id="build-failed",
        ),
    ],
)
def test_problem_descriptions(problem: PackageProblem, text: str) -> None:
    assert problem.describe() == text


def test_package_errors_list_every_problem_sorted_by_name() -> None:
    error = PackageErrors(
        [
            PackageProblem("zz", ProblemKind.NOT_FOUND),
            PackageProblem("aa", ProblemKind.BUILD_FAILED),
        ],
        log_tail="tail",
    )
    assert [p.name for p in error.problems] == ["aa", "zz"]
    assert str(error) == "aa: build failed; zz: not found"
    assert error.log_tail == "tail"


@pytest.mark.parametrize("cls", [PackageErrors, NixTimeout, NixFailure])
def test_every_failure_is_a_nix_error(cls: type[NixError]) -> None:
    assert issubclass(cls, NixError)


def test_nix_error_keeps_its_log_tail() -> None:
    error = NixTimeout("NIX_TIMEOUT expired", log_tail="building...")
    assert str(error) == "NIX_TIMEOUT expired"
    assert error.log_tail == "building..."
