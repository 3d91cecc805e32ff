"""The Nix side against the real store: resolution, realisation, closure,
timeouts. No registry; :class:`nixspec.realise.NixSession` directly."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from nixspec.errors import NixTimeout, PackageErrors, ProblemKind
from nixspec.names import Arch
from nixspec.realise import NixSession
from nixspec.runner import Deadline
from nixspec.sources import tree_signature
from nixspec.spec import ImageSpec, PackageSource, SourceKind

pytestmark = [pytest.mark.nix, pytest.mark.integration]


def spec(pkgs_path: Path, *packages: str) -> ImageSpec:
    source = PackageSource(SourceKind.PATH, str(pkgs_path), tree_signature(pkgs_path))
    return ImageSpec("test", "latest", tuple(sorted(packages)), Arch.AMD64, source)


def session(pkgs_path: Path, *packages: str, timeout: float = 120.0) -> NixSession:
    return NixSession(spec(pkgs_path, *packages), Deadline(timeout))


def test_one_evaluation_reports_every_problem(nix: None, pkgs_path: Path) -> None:
    names = ["hello", "nosuch", "casetwin", "notapackage", "throws", "unfree", "nested.nope"]
    s = session(pkgs_path, *names)
    with pytest.raises(PackageErrors) as caught:
        s.resolve()
    kinds = {p.name: p.kind for p in caught.value.problems}
    assert kinds == {
        "casetwin": ProblemKind.AMBIGUOUS,
        "nested.nope": ProblemKind.NOT_FOUND,
        "nosuch": ProblemKind.NOT_FOUND,
        "notapackage": ProblemKind.NOT_A_PACKAGE,
        "throws": ProblemKind.EVAL_ERROR,
        "unfree": ProblemKind.EVAL_ERROR,
    }
    unfree = next(p for p in caught.value.problems if p.name == "unfree")
    assert "unfree" in unfree.message.lower()


def test_names_resolve_case_insensitively_with_outputs(nix: None, pkgs_path: Path) -> None:
    resolved = session(pkgs_path, "haskellpackages.hunit", "multioutput", "7zz").resolve()
    by_name = {r.name: r for r in resolved}
    assert by_name["haskellpackages.hunit"].attr_path == "haskellPackages.HUnit"
    assert by_name["7zz"].attr_path == "_7zz"
    # outputsToInstall is ["bin", "man"]; documentation is left out.
    assert [o for o, _ in by_name["multioutput"].outputs] == ["bin"]


def test_realise_roots_and_closure(nix: None, pkgs_path: Path, tmp_path: Path) -> None:
    s = session(pkgs_path, "foo", "hello")
    resolved = s.resolve()
    s.realise(resolved, tmp_path / "result")
    roots = sorted(tmp_path.iterdir())
    assert len(roots) == 2
    targets = {os.readlink(r) for r in roots}
    assert targets == {p for r in resolved for p in r.out_paths}
    graph = s.closure(sorted(targets))
    names = {path.split("-", 1)[1] for path in graph}
    assert {"hello-2.12.1", "foo-1.0", "libfoo-1.2.3", "busybox-1.35.0"} <= names
    for path, info in graph.items():
        assert info.nar_size > 0
        assert path not in info.references
        assert all(ref in graph for ref in info.references)


def test_build_failure_names_the_package(nix: None, pkgs_path: Path, tmp_path: Path) -> None:
    s = session(pkgs_path, "hello", "broken")
    resolved = s.resolve()
    with pytest.raises(PackageErrors) as caught:
        s.realise(resolved, tmp_path / "result")
    assert [(p.name, p.kind) for p in caught.value.problems] == [
        ("broken", ProblemKind.BUILD_FAILED)
    ]
    assert "broken" in caught.value.log_tail


def _processes_with(argument: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argument.encode() in args:
                found.append(int(entry.name))
    return found


def test_timeout_kills_the_whole_process_tree(
    nix: None, pkgs_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds = f"{100 + secrets.randbelow(900)}.{1 + secrets.randbelow(9)}"  # unique to this run
    monkeypatch.setenv("NIXERY_TEST_SLEEP_S", seconds)
    s = session(pkgs_path, "sleeper", timeout=3.0)
    resolved = s.resolve()
    started = time.monotonic()
    with pytest.raises(NixTimeout):
        s.realise(resolved, tmp_path / "result")
    assert time.monotonic() - started < 60  # far below the sleep: it was killed
    deadline = time.monotonic() + 5
    while _processes_with(seconds) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(seconds) == []
