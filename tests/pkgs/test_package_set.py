"""The test package set `tests/pkgs` builds, runs and fails the way the registry's tests need.

Every test drives the real Nix (`nix-build`, `nix-instantiate`, `nix-store`) against the
real /nix/store, offline, with the configuration of `shared/notes/environment.md`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PKGS = Path(__file__).resolve().parent
NIX_CONFIG = "substituters =\nbuild-users-group =\nsandbox = false\nbuild-poll-interval = 1"
MIB = 1024 * 1024
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

pytestmark = [
    pytest.mark.nix,
    pytest.mark.skipif(
        shutil.which("nix-build") is None or not Path("/bin/busybox").is_file(),
        reason="needs Nix and a static busybox: "
        "apt-get install -y --no-install-recommends nix-bin busybox-static",
    ),
]

# Every attribute that builds quickly, with its store name (`pname-version`).
SMALL_PACKAGES = {
    "busybox": "busybox-1.35.0",
    "hello": "hello-2.12.1",
    "bashInteractive": "bash-interactive-5.2-p15",
    "coreutils": "coreutils-9.3",
    "moreutils": "moreutils-0.67",
    "nano": "nano-7.2",
    "cacert": "nss-cacert-3.95",
    "iana-etc": "iana-etc-20231227",
    "libfoo": "libfoo-1.2.3",
    "foo": "foo-1.0",
    "fooBar": "foo-bar-2.0",
    "SDL2": "SDL2-2.28.5",
    "Ambiguous": "Ambiguous-1.0",
    "ambiguous": "ambiguous-1.0",
    "CaseTwin": "case-twin-upper-1.0",
    "caseTwin": "case-twin-lower-1.0",
    "_7zz": "7zz-23.01",
    "multiOutput": "multi-output-1.0",
    "singleFile": "single-file-1.0",
    "python3Packages.urllib3": "python3.11-urllib3-2.0.7",
    "python3Packages.requests": "python3.11-requests-2.31.0",
    "haskellPackages.HUnit": "HUnit-1.6.2.0",
}
DATA_ONLY = {
    "cacert",
    "iana-etc",
    "libfoo",
    "singleFile",
    "python3Packages.urllib3",
    "python3Packages.requests",
    "haskellPackages.HUnit",
}


def nix_env(**extra: str) -> dict[str, str]:
    """The caller's environment with the offline Nix configuration and no test overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"NIXERY_TEST_LARGE_MIB", "NIXPKGS_ALLOW_UNFREE", "NIXPKGS_ALLOW_BROKEN"}
    }
    env["NIX_CONFIG"] = NIX_CONFIG
    env.update(extra)
    return env


def run(
    args: list[str], env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = dict(env) if env is not None else nix_env()
    proc = subprocess.run(args, env=env, input="", capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{args} exited with {proc.returncode}:\n{proc.stderr}")
    return proc


def build(attr: str, *extra: str, env: Mapping[str, str] | None = None) -> list[Path]:
    """`nix-build tests/pkgs -A attr --no-out-link`: the output paths, one per line."""
    out = run(["nix-build", str(PKGS), "-A", attr, "--no-out-link", *extra], env=env).stdout
    return [Path(line) for line in out.split()]


def build_one(attr: str, *extra: str, env: Mapping[str, str] | None = None) -> Path:
    (path,) = build(attr, *extra, env=env)
    return path


def evaluate(attr: str, *extra: str, env: Mapping[str, str] | None = None) -> object:
    cmd = ["nix-instantiate", "--eval", "--json", "--strict", str(PKGS), "-A", attr, *extra]
    return json.loads(run(cmd, env=env).stdout)


def evaluate_expr(expr: str, **argstr: str) -> object:
    """`nix-instantiate --eval` of a function of `path` (this package set) and string arguments."""
    args = [x for name, value in argstr.items() for x in ("--argstr", name, value)]
    cmd = ["nix-instantiate", "--eval", "--json", "--strict", "-E", expr]
    return json.loads(run([*cmd, "--argstr", "path", str(PKGS), *args]).stdout)


def closure(paths: list[Path]) -> list[Path]:
    out = run(["nix-store", "--query", "--requisites", *map(str, paths)]).stdout
    return [Path(line) for line in out.split()]


@pytest.fixture(scope="module")
def small_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Every small package built in one `nix-build` call (all outputs of multiOutput).

    The out-links are GC roots: a garbage collection by a concurrent test cannot delete the
    outputs while these tests copy and run them.
    """
    split = ["multiOutput.out", "multiOutput.bin", "multiOutput.man"]
    attrs = [a for a in SMALL_PACKAGES if a != "multiOutput"] + split
    args = [x for a in attrs for x in ("-A", a)]
    link = tmp_path_factory.mktemp("gcroots") / "result"
    paths = [Path(p) for p in run(["nix-build", str(PKGS), *args, "-o", str(link)]).stdout.split()]
    result = {attr: [path] for attr, path in zip(attrs, paths, strict=True)}
    result["multiOutput"] = [result.pop(attr)[0] for attr in split]
    return result


# --- names and layout -------------------------------------------------------------------


@pytest.mark.parametrize(("attr", "name"), SMALL_PACKAGES.items())
def test_store_name_is_pname_version(
    attr: str, name: str, small_outputs: dict[str, list[Path]]
) -> None:
    assert evaluate(f"{attr}.name") == name
    assert small_outputs[attr][0].name.split("-", 1)[1] == name


def test_hello_prints_the_greeting(small_outputs: dict[str, list[Path]]) -> None:
    hello = small_outputs["hello"][0]
    assert run([str(hello / "bin/hello")]).stdout == "Hello, world!\n"
    assert run([str(hello / "bin/hello"), "--greeting=hi there"]).stdout == "hi there\n"


@pytest.mark.parametrize("program", ["bash", "sh"])
def test_bash_runs_commands(program: str, small_outputs: dict[str, list[Path]]) -> None:
    shell = small_outputs["bashInteractive"][0] / "bin" / program
    assert run([str(shell), "-c", "echo hi; echo $((6 * 7))"]).stdout == "hi\n42\n"


@pytest.mark.parametrize("program", ["env", "ls", "cat", "echo", "id", "true"])
def test_coreutils_has_the_usual_programs(
    program: str, small_outputs: dict[str, list[Path]]
) -> None:
    path = small_outputs["coreutils"][0] / "bin" / program
    assert os.access(path, os.X_OK)
    assert run([str(path), "--help"], check=False).returncode in (0, 1)  # busybox usage exits 1


@pytest.mark.parametrize(
    ("attr", "relative"),
    [
        ("moreutils", "bin/sponge"),
        ("moreutils", "bin/ts"),
        ("nano", "bin/nano"),
        ("cacert", "etc/ssl/certs/ca-bundle.crt"),
        ("iana-etc", "etc/services"),
        ("iana-etc", "etc/protocols"),
        ("SDL2", "bin/sdl2-config"),
        ("python3Packages.requests", "lib/python3.11/site-packages/requests/__init__.py"),
        ("haskellPackages.HUnit", "share/doc/HUnit-1.6.2.0/README"),
    ],
)
def test_usual_layout(attr: str, relative: str, small_outputs: dict[str, list[Path]]) -> None:
    assert (small_outputs[attr][0] / relative).is_file()


@pytest.mark.parametrize("attr", sorted(DATA_ONLY))
def test_data_only_packages_have_no_programs(
    attr: str, small_outputs: dict[str, list[Path]]
) -> None:
    assert not (small_outputs[attr][0] / "bin").exists()


def test_cacert_looks_like_pem(small_outputs: dict[str, list[Path]]) -> None:
    text = (small_outputs["cacert"][0] / "etc/ssl/certs/ca-bundle.crt").read_text()
    assert "-----BEGIN CERTIFICATE-----" in text
    assert "-----END CERTIFICATE-----" in text


def test_moreutils_sponge_and_ts_work(small_outputs: dict[str, list[Path]], tmp_path: Path) -> None:
    bin_dir = small_outputs["moreutils"][0] / "bin"
    target = tmp_path / "soaked"
    subprocess.run([str(bin_dir / "sponge"), str(target)], input="a\nb\n", text=True, check=True)
    assert target.read_text() == "a\nb\n"
    stamped = subprocess.run(
        [str(bin_dir / "ts"), "%Y"], input="x\n", text=True, capture_output=True, check=True
    )
    assert re.fullmatch(r"\d{4} x\n", stamped.stdout)


def test_ambiguous_pair_differs(small_outputs: dict[str, list[Path]]) -> None:
    upper = run([str(small_outputs["Ambiguous"][0] / "bin/ambiguous")]).stdout
    lower = run([str(small_outputs["ambiguous"][0] / "bin/ambiguous")]).stdout
    assert upper.startswith("Ambiguous") and lower.startswith("ambiguous")


def test_multiple_outputs(small_outputs: dict[str, list[Path]]) -> None:
    out, bin_, man = small_outputs["multiOutput"]
    names = [p.name.split("-", 1)[1] for p in (out, bin_, man)]
    assert names == ["multi-output-1.0", "multi-output-1.0-bin", "multi-output-1.0-man"]
    assert evaluate("multiOutput.meta.outputsToInstall") == ["bin", "man"]
    assert evaluate("multiOutput.outputs") == ["out", "bin", "man"]
    assert run([str(bin_ / "bin/multi-tool")]).stdout.startswith("multi-tool 1.0 using")
    assert (man / "share/man/man1/multi-tool.1").is_file()
    assert out in closure([bin_])  # the tool references its library, like real split outputs


def test_single_output_packages_install_out() -> None:
    assert evaluate("hello.meta.outputsToInstall") == ["out"]


def test_single_file_output(small_outputs: dict[str, list[Path]]) -> None:
    assert small_outputs["singleFile"][0].is_file()


def test_closures_overlap(small_outputs: dict[str, list[Path]]) -> None:
    foo = set(closure(small_outputs["foo"]))
    foo_bar = set(closure(small_outputs["fooBar"]))
    shared = {small_outputs["libfoo"][0], small_outputs["busybox"][0]}
    assert foo & foo_bar == shared
    requests = closure(small_outputs["python3Packages.requests"])
    assert small_outputs["python3Packages.urllib3"][0] in requests


def test_accepts_the_arguments_nixpkgs_accepts() -> None:
    expr = (
        "{ path }: (import (/. + path) { system = builtins.currentSystem; config = { };"
        " overlays = [ ]; crossSystem = null; }).hello.name"
    )
    assert evaluate_expr(expr) == "hello-2.12.1"


def test_every_attribute_is_documented() -> None:
    names = evaluate_expr("{ path }: builtins.attrNames (import (/. + path) { })")
    assert isinstance(names, list)
    header = (PKGS / "default.nix").read_text().split("\n{ system", 1)[0]
    readme = (PKGS / "README.md").read_text()
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", header), name
        assert f"`{name}`" in readme or f"`{name}." in readme, name


# --- failures ---------------------------------------------------------------------------


def test_broken_fails_to_build_with_a_clear_message() -> None:
    proc = run(["nix-build", str(PKGS), "-A", "broken", "--no-out-link"], check=False)
    assert proc.returncode == 100  # Nix's exit code for a failed build
    assert "broken-1.0: this package always fails to build" in proc.stderr


EVAL_ERRORS = [
    ("throws", True, "this package was removed"),
    ("assertFails", True, "assertion 'isDarwin' failed"),
    ("unfree", True, "has an unfree license"),
    ("markedBroken", True, "is marked as broken"),
    ("aborts", False, "evaluation aborted with the following error message: 'aborts:"),
    ("missingDependency", False, "attribute 'notInThisPackageSet' missing"),
]


@pytest.mark.parametrize(("attr", "catchable", "message"), EVAL_ERRORS)
def test_evaluation_error(attr: str, catchable: bool, message: str) -> None:
    cmd = ["nix-instantiate", "--eval", "--json", "--strict", str(PKGS), "-A", attr]
    proc = run(cmd, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert message in proc.stderr


@pytest.mark.parametrize(("attr", "catchable", "message"), EVAL_ERRORS)
def test_try_eval_catches_only_throw_and_assert(attr: str, catchable: bool, message: str) -> None:
    expr = "{ path, attr }: (builtins.tryEval (import (/. + path) { }).${attr}.outPath).success"
    cmd = ["nix-instantiate", "--eval", "--json", "--strict", "-E", expr]
    proc = run([*cmd, "--argstr", "path", str(PKGS), "--argstr", "attr", attr], check=False)
    if catchable:
        assert (proc.returncode, proc.stdout) == (0, "false")
    else:
        assert proc.returncode == 1
        assert message in proc.stderr


@pytest.mark.parametrize("attr", ["aborts", "missingDependency", "unfree", "markedBroken"])
def test_failing_packages_still_have_a_name(attr: str) -> None:
    """Only outPath/drvPath fail, like nixpkgs: a resolver can name the package it reports."""
    assert isinstance(evaluate(f"{attr}.name"), str)


def test_unfree_builds_when_allowed() -> None:
    allowed = build_one("unfree", "--arg", "config", "{ allowUnfree = true; }")
    assert run([str(allowed / "bin/unfree-tool")]).stdout == "unfree-tool 1.0\n"
    via_env = build_one("unfree", env=nix_env(NIXPKGS_ALLOW_UNFREE="1"))
    assert via_env == allowed


@pytest.mark.parametrize(
    ("attr", "value"),
    [("notAPackage", "a string, not a package"), ("notAPackageSet", None)],
)
def test_not_a_package(attr: str, value: str | None) -> None:
    result = evaluate(attr)
    if value is None:
        assert isinstance(result, dict) and "outPath" not in result
    else:
        assert result == value
    is_function = "{ path }: builtins.isFunction (import (/. + path) { }).notAPackageFunction"
    assert evaluate_expr(is_function) is True


# --- large packages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attr", "min_ratio", "max_ratio"),
    [("large", 1.3, 20.0), ("largeCompressible", 50.0, None), ("largeIncompressible", 0, 1.01)],
)
def test_large_size_follows_the_environment(
    attr: str, min_ratio: float, max_ratio: float | None
) -> None:
    pkg = build_one(attr, env=nix_env(NIXERY_TEST_LARGE_MIB="2"))
    (data,) = (pkg / "share").glob("*/data.bin")
    assert data.stat().st_size == 2 * MIB
    (program,) = (pkg / "bin").iterdir()
    assert run([str(program)]).stdout == f"{2 * MIB}\n"
    ratio = data.stat().st_size / len(zlib.compress(data.read_bytes(), 6))
    assert ratio >= min_ratio
    assert max_ratio is None or ratio <= max_ratio


def test_large_defaults_to_64_mib() -> None:
    assert evaluate("large.sizeMiB") == "64"


def test_large_rejects_a_bad_size() -> None:
    cmd = ["nix-instantiate", "--eval", str(PKGS), "-A", "large.outPath"]
    proc = run(cmd, env=nix_env(NIXERY_TEST_LARGE_MIB="lots"), check=False)
    assert proc.returncode == 1
    assert "NIXERY_TEST_LARGE_MIB must be a whole number of MiB" in proc.stderr


# --- runtime references -----------------------------------------------------------------


def _files(root: Path) -> Iterator[Path]:
    yield root
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                yield Path(dirpath, name)


def _store_path_of(target: str) -> Path:
    return Path(*Path(target).parts[:4])  # /, nix, store, <hash>-<name>


@pytest.mark.parametrize("attr", SMALL_PACKAGES)
def test_runtime_references_are_store_paths_in_the_closure(
    attr: str, small_outputs: dict[str, list[Path]]
) -> None:
    """Interpreters and absolute symlinks point into the package's own closure, never the host."""
    outputs = small_outputs[attr]
    paths = set(closure(outputs))
    for output in outputs:
        for file in _files(output):
            if file.is_symlink():
                target = os.readlink(file)
                if target.startswith("/"):
                    assert _store_path_of(target) in paths, (file, target)
            elif file.is_file() and os.access(file, os.X_OK):
                with file.open("rb") as f:
                    head = f.read(256)
                if head.startswith(b"#!"):
                    interpreter = head[2:].split(b"\n", 1)[0].split()[0].decode()
                    assert _store_path_of(interpreter) in paths, (file, interpreter)


@pytest.fixture
def chroot_of(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or not os.access(CHROOT, os.X_OK):
        pytest.skip("the closure chroot needs root and chroot(8)")
    yield tmp_path / "root"


def _copy_closure(outputs: list[Path], root: Path) -> None:
    store = root / "nix" / "store"
    store.mkdir(parents=True)
    for path in closure(outputs):
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, store / path.name, symlinks=True)
        else:
            shutil.copy2(path, store / path.name, follow_symlinks=False)


@pytest.mark.parametrize(
    ("attr", "command", "expected"),
    [
        ("hello", ["hello"], "Hello, world!\n"),
        ("bashInteractive", ["bash", "-c", "echo hi"], "hi\n"),
        ("bashInteractive", ["sh", "-c", "echo hi"], "hi\n"),
        ("coreutils", ["echo", "hi"], "hi\n"),
        ("coreutils", ["env", "-i", "A=1"], "A=1\n"),
        ("coreutils", ["id", "-u"], "0\n"),
        ("coreutils", ["true"], ""),
        ("coreutils", ["ls", "-d", "/nix/store"], "/nix/store\n"),
        ("coreutils", ["cat", "-"], ""),  # the chroot has no /dev: empty stdin
        ("foo", ["foo"], "foo 1.0: greetings from libfoo 1.2.3\n"),
        ("moreutils", ["chronic", "/nix/store/MISSING"], None),
        ("nano", ["nano", "--version"], " GNU nano, version 7.2\n"),
    ],
)
def test_runs_in_a_chroot_of_its_closure(
    attr: str,
    command: list[str],
    expected: str | None,
    small_outputs: dict[str, list[Path]],
    chroot_of: Path,
) -> None:
    _copy_closure(small_outputs[attr], chroot_of)
    program, *args = command
    binary = small_outputs[attr][0] / "bin" / program
    proc = run([CHROOT, str(chroot_of), str(binary), *args], env={}, check=False)
    if expected is None:  # chronic shows the failing command's output and its status
        assert proc.returncode != 0
    else:
        assert (proc.returncode, proc.stdout) == (0, expected), proc.stderr


@pytest.mark.parametrize("attr", [a for a in SMALL_PACKAGES if a not in DATA_ONLY])
def test_every_program_resolves_in_a_chroot_of_its_closure(
    attr: str, small_outputs: dict[str, list[Path]], chroot_of: Path
) -> None:
    outputs = small_outputs[attr]
    programs = [p for o in outputs if (o / "bin").is_dir() for p in sorted((o / "bin").iterdir())]
    assert programs
    _copy_closure(outputs, chroot_of)
    shell = f"{small_outputs['busybox'][0]}/bin/sh"
    # `-x` follows every symlink inside the chroot: a host path would not resolve.
    script = 'for p; do [ -x "$p" ] || echo "unresolved: $p"; done'
    proc = run([CHROOT, str(chroot_of), shell, "-c", script, "sh", *map(str, programs)], env={})
    assert proc.stdout == ""
