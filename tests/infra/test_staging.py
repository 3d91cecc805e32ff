"""scripts/stage-functions: each staged folder is a complete function source.

The folder is staged into a temporary directory by the real script, then
loaded in clean processes whose import path is only the staged folder and
the virtualenv's site-packages: ``-S`` keeps ``site`` (and so the editable
install's ``.pth`` pointing back at this repository) out, the working
directory is outside the repository, and the modules actually imported are
checked to come from the staged folder. The manifest function serves ``/v2/``
from it under functions-framework, as Cloud Functions runs it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.functions import UNREACHED_GCP_ENV, serve_function
from tests.support.procs import free_port

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "stage-functions"
SITE_PACKAGES = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
FIRST_PARTY = ("registry", "blobstore", "metastore", "launcher", "nixspec", "ocimodel")
#: What each function needs from outside, at least (its own backend's library).
NEEDED = {
    "manifest": {
        "functions-framework",
        "flask",
        "werkzeug",
        "google-cloud-firestore",
        "google-cloud-run",
    },
    "blob": {"functions-framework", "flask", "werkzeug", "google-cloud-storage", "google-auth"},
}
#: A minimal valid environment: the functions' adapters are built at import
#: but contact nothing until a request needs them.
FUNCTION_ENV = {"NIXERY_CHANNEL": "nixos-unstable", **UNREACHED_GCP_ENV}
PROBE = """
import json, sys
import functions_framework
functions_framework.create_app(sys.argv[1], sys.argv[2])
print(json.dumps({name: getattr(module, "__file__", None) for name, module in sys.modules.items()}))
"""


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("staged")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def clean_env(staged_folder: Path) -> dict[str, str]:
    """The process environment of a staged function: nothing of this
    repository on the import path."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NIXERY_", "GOOGLE_", "PYTHON", "FIRESTORE_", "STORAGE_"))
    }
    return {
        **base,
        **FUNCTION_ENV,
        "PYTHONPATH": os.pathsep.join([str(staged_folder), *SITE_PACKAGES]),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.mark.parametrize("name", ["manifest", "blob"])
def test_staged_folder_holds_main_packages_and_pins(staged: Path, name: str) -> None:
    folder = staged / name
    assert (folder / "main.py").read_bytes() == (REPO / "functions" / name / "main.py").read_bytes()
    for package in FIRST_PARTY:
        assert (folder / package / "__init__.py").is_file(), package
    assert (folder / "nixspec" / "nix" / "resolve.nix").is_file()  # data files come along
    assert not list(folder.rglob("__pycache__"))
    assert not (folder / "tests").exists() and not (folder / "functions").exists()
    # The staged copies are this repository's code, byte for byte.
    for file in (folder / "registry").glob("*.py"):
        assert file.read_bytes() == (REPO / "shared" / "registry" / file.name).read_bytes()

    pins = {}
    for line in (folder / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            dist, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned exactly"
            pins[_normal(dist)] = version
    assert NEEDED[name] <= set(pins), NEEDED[name] - set(pins)
    for dist, version in pins.items():
        assert importlib.metadata.version(dist) == version, dist
    # Tools of the test suite are not what a function imports.
    assert not {"pytest", "mypy", "ruff", "hypothesis"} & set(pins)


def test_staging_twice_gives_the_same_bytes(staged: Path, tmp_path: Path) -> None:
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "blob"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr

    def contents(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert contents(tmp_path / "blob") == contents(staged / "blob")


@pytest.mark.parametrize("name", ["manifest", "blob"])
def test_staged_function_imports_only_from_its_folder(staged: Path, name: str) -> None:
    folder = staged / name
    result = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, name, str(folder / "main.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=staged,
        env=clean_env(folder),
    )
    assert result.returncode == 0, result.stderr
    files: dict[str, str | None] = json.loads(result.stdout.strip().splitlines()[-1])
    assert "site" not in files  # no .pth file ran: the editable install is not on the path
    for package in FIRST_PARTY:
        module_file = files.get(package)
        assert module_file is not None, f"{package} was not imported"
        assert Path(module_file).is_relative_to(folder), (package, module_file)
    ours = [
        (module, path)
        for module, path in files.items()
        if path and Path(path).is_relative_to(REPO) and not Path(path).is_relative_to(folder)
    ]
    # Only the virtualenv itself may live under the repository (.venv/).
    assert all(Path(path).is_relative_to(REPO / ".venv") for _, path in ours), ours


@pytest.fixture
def served_manifest(staged: Path, tmp_path: Path) -> Iterator[int]:
    folder = staged / "manifest"
    port = free_port()
    process = serve_function(
        "staged manifest function",
        "manifest",
        folder / "main.py",
        port,
        tmp_path / "manifest.log",
        env=clean_env(folder),
        command=(sys.executable, "-S", "-m", "functions_framework"),
        cwd=staged,
        interval=0.05,
    )
    try:
        yield port
    finally:
        process.stop()


def test_staged_manifest_function_serves_v2(served_manifest: int) -> None:
    response = requests.get(f"http://127.0.0.1:{served_manifest}/v2/", timeout=10)
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    # A push is refused by the staged code too (no backend is contacted for it).
    upload = requests.post(
        f"http://127.0.0.1:{served_manifest}/v2/hello/blobs/uploads/", timeout=10
    )
    assert upload.status_code == 405
    assert upload.json()["errors"][0]["code"] == "UNSUPPORTED"
