"""The Nix command lines and the parsing of their output (`nixspec.invocation`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from nixspec.errors import PackageProblem, ProblemKind
from nixspec.invocation import (
    RESOLVE_NIX,
    Resolved,
    error_message,
    eval_argv,
    invalid_paths_argv,
    parse_resolution,
    path_info_argv,
    realise_argv,
    resolve_request,
)
from nixspec.names import Arch
from nixspec.spec import ImageSpec, PackageSource, SourceKind

COMMIT = "0123456789abcdef0123456789abcdef01234567"
SPEC = ImageSpec(
    "hello/arm64",
    "latest",
    ("cacert", "hello", "iana-etc"),
    Arch.ARM64,
    PackageSource(SourceKind.CHANNEL, "nixos-unstable", COMMIT),
)
HELLO = Resolved(
    "hello",
    "hello",
    "/nix/store/aaaa-hello-2.12.drv",
    (("out", "/nix/store/bbbb-hello-2.12"),),
)
GIT = Resolved(
    "git",
    "git",
    "/nix/store/cccc-git-2.45.drv",
    (("doc", "/nix/store/dddd-git-2.45-doc"), ("out", "/nix/store/eeee-git-2.45")),
)


def test_resolve_request_carries_the_spec_as_json() -> None:
    request = json.loads(resolve_request(SPEC, ["hello", "cacert"], allow_unfree=True))
    assert request == {
        "source": {"kind": "channel", "location": "nixos-unstable", "revision": COMMIT},
        "system": "aarch64-linux",
        "allowUnfree": True,
        "names": ["hello", "cacert"],
        "explain": None,
        "probe": False,
    }


@pytest.mark.parametrize(
    ("explain", "probe"),
    [
        pytest.param("hello", False, id="explain"),
        pytest.param(None, True, id="probe"),
    ],
)
def test_resolve_request_modes(explain: str | None, probe: bool) -> None:
    request = json.loads(
        resolve_request(SPEC, ["hello"], allow_unfree=False, explain=explain, probe=probe)
    )
    assert request["explain"] == explain
    assert request["probe"] is probe
    assert request["allowUnfree"] is False


@pytest.mark.parametrize(
    "name",
    [
        pytest.param('a"; builtins.abort "x', id="quote"),
        pytest.param("${builtins.currentTime}", id="interpolation"),
        pytest.param("a\nb\\c", id="newline-backslash"),
    ],
)
def test_names_travel_as_json_data(name: str) -> None:
    request = resolve_request(SPEC, [name], allow_unfree=False)
    assert json.loads(request)["names"] == [name]
    argv = eval_argv(request)
    assert argv[-1] == request  # one argv element, never spliced into Nix code
    assert name not in argv[:-1]


def test_resolve_request_is_deterministic() -> None:
    first = resolve_request(SPEC, ["hello"], allow_unfree=False)
    assert first == resolve_request(SPEC, ["hello"], allow_unfree=False)
    assert list(json.loads(first)) == sorted(json.loads(first))


def test_eval_argv() -> None:
    assert eval_argv("{}") == [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        "--read-write-mode",
        str(RESOLVE_NIX),
        "--argstr",
        "request",
        "{}",
    ]
    assert RESOLVE_NIX.is_file()


def test_realise_argv_builds_exactly_the_wanted_outputs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert realise_argv([HELLO, GIT], root) == [
        "nix-store",
        "--realise",
        "--keep-going",
        "--add-root",
        str(root),
        "--indirect",
        "/nix/store/aaaa-hello-2.12.drv!out",
        "/nix/store/cccc-git-2.45.drv!doc,out",
    ]


@pytest.mark.parametrize(
    ("resolved", "installable", "out_paths"),
    [
        pytest.param(
            HELLO, "/nix/store/aaaa-hello-2.12.drv!out", ("/nix/store/bbbb-hello-2.12",), id="one"
        ),
        pytest.param(
            GIT,
            "/nix/store/cccc-git-2.45.drv!doc,out",
            ("/nix/store/dddd-git-2.45-doc", "/nix/store/eeee-git-2.45"),
            id="two-outputs",
        ),
    ],
)
def test_resolved_installable_and_out_paths(
    resolved: Resolved, installable: str, out_paths: tuple[str, ...]
) -> None:
    assert resolved.installable == installable
    assert resolved.out_paths == out_paths


@pytest.mark.parametrize(
    ("build", "paths", "argv"),
    [
        pytest.param(
            invalid_paths_argv,
            ["/nix/store/a", "/nix/store/b"],
            ["nix-store", "--check-validity", "--print-invalid", "/nix/store/a", "/nix/store/b"],
            id="check-validity",
        ),
        pytest.param(
            path_info_argv,
            ["/nix/store/a"],
            [
                "nix",
                "--extra-experimental-features",
                "nix-command",
                "path-info",
                "--json",
                "--recursive",
                "/nix/store/a",
            ],
            id="path-info",
        ),
    ],
)
def test_store_query_argv(
    build: Callable[[Sequence[str]], list[str]], paths: list[str], argv: list[str]
) -> None:
    assert build(paths) == argv


def test_parse_resolution_splits_packages_and_problems() -> None:
    answer = json.dumps(
        [
            {
                "name": "hello",
                "attrPath": "hello",
                "drvPath": "/nix/store/aaaa-hello-2.12.drv",
                "outputs": {"out": "/nix/store/bbbb-hello-2.12"},
            },
            {
                "name": "git",
                "attrPath": "git",
                "drvPath": "/nix/store/cccc-git-2.45.drv",
                # Nix's attribute order is not ours: outputs come back sorted.
                "outputs": {
                    "out": "/nix/store/eeee-git-2.45",
                    "doc": "/nix/store/dddd-git-2.45-doc",
                },
            },
            {"name": "nope", "error": "not-found", "attrPath": "", "candidates": []},
            {"name": "foo", "error": "ambiguous", "attrPath": "", "candidates": ["Foo", "foo"]},
            {"name": "lib", "error": "not-a-package", "attrPath": "lib"},
            {"name": "unfree", "error": "eval-error", "attrPath": "unfreePkg"},
        ]
    )
    resolved, problems = parse_resolution(answer)
    assert resolved == [HELLO, GIT]
    assert problems == [
        PackageProblem("nope", ProblemKind.NOT_FOUND),
        PackageProblem("foo", ProblemKind.AMBIGUOUS, candidates=("Foo", "foo")),
        PackageProblem("lib", ProblemKind.NOT_A_PACKAGE, attr_path="lib"),
        PackageProblem("unfree", ProblemKind.EVAL_ERROR, attr_path="unfreePkg"),
    ]


def test_parse_resolution_of_a_lowercase_name_keeps_the_real_attribute() -> None:
    answer = json.dumps(
        [
            {
                "name": "python3packages.numpy",
                "attrPath": "python3Packages.numpy",
                "drvPath": "/nix/store/ffff-numpy.drv",
                "outputs": {"out": "/nix/store/gggg-numpy"},
            }
        ]
    )
    [resolved], problems = parse_resolution(answer)
    assert problems == []
    assert (resolved.name, resolved.attr_path) == ("python3packages.numpy", "python3Packages.numpy")


@pytest.mark.parametrize(
    ("stdout", "error"),
    [
        pytest.param('{"name": "hello"}', ValueError, id="not-a-list"),
        pytest.param("not json", ValueError, id="not-json"),
        pytest.param('[{"name": "x", "error": "exploded"}]', ValueError, id="unknown-problem"),
        pytest.param('[{"name": "x"}]', KeyError, id="no-outputs"),
    ],
)
def test_parse_resolution_rejects_malformed_answers(stdout: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_resolution(stdout)


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        pytest.param(
            "warning: unknown setting 'foo'\n"
            "error: attribute 'hullo' missing\n"
            "\n"
            "       at /pkgs/default.nix:3:5:\n"
            "(use '--show-trace' to show detailed location information)\n",
            "attribute 'hullo' missing at /pkgs/default.nix:3:5:",
            id="nix-error-with-trace-hint",
        ),
        pytest.param(
            "error: Package 'unrar-7.0' has an unfree license ('unfreeRedistributable'), "
            "refusing to evaluate.\n",
            "Package 'unrar-7.0' has an unfree license ('unfreeRedistributable'), "
            "refusing to evaluate.",
            id="unfree",
        ),
        pytest.param("  segfault\n", "segfault", id="no-error-line"),
        pytest.param("", "", id="empty"),
    ],
)
def test_error_message(stderr: str, message: str) -> None:
    assert error_message(stderr) == message


@pytest.mark.parametrize(
    "stderr",
    [
        pytest.param("error: " + "x" * 2000, id="long-error"),
        pytest.param("y" * 2000, id="long-no-error-line"),
    ],
)
def test_error_message_is_bounded(stderr: str) -> None:
    assert 0 < len(error_message(stderr)) <= 500
