"""The functions import only what they serve: no Nix, tar or layering code,
and each only the Google library of its own backend, which loads after the
first request (on a warming thread), not at import: that is the cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.functions import UNREACHED_GCP_ENV

REPO = Path(__file__).resolve().parents[2]
GCP_ENV = {
    "NIXERY_PKGS_PATH": str(REPO / "tests" / "pkgs"),
    # Clients are constructed but never contacted by an import.
    **UNREACHED_GCP_ENV,
}
PROBE = """
import json, sys, threading, functions_framework
app = functions_framework.create_app(sys.argv[1], sys.argv[2])
at_import = sorted(sys.modules)
app.test_client().get("/v2/")
for thread in threading.enumerate():
    if thread.name.startswith("warm "):
        thread.join()
print(json.dumps([at_import, sorted(sys.modules)]))
"""
NEVER = ("tarfile", "gzip", "builder_job", "layering", "nixspec.realise", "nixspec.runner")


def loaded_modules(target: str) -> tuple[set[str], set[str]]:
    """Modules loaded at import, and after the first request's warming."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIXERY_", "GOOGLE_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, target, str(REPO / "functions" / target / "main.py")],
        env={**env, **GCP_ENV},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    at_import, warmed = json.loads(out.strip().splitlines()[-1])
    return set(at_import), set(warmed)


@pytest.mark.parametrize(
    ("target", "needed", "unneeded"),
    [
        ("manifest", "google.cloud.firestore", "google.cloud.storage"),
        ("blob", "google.cloud.storage", "google.cloud.firestore"),
    ],
)
def test_function_imports_only_what_it_needs(target: str, needed: str, unneeded: str) -> None:
    at_import, modules = loaded_modules(target)
    clients = ("google.cloud.firestore", "google.cloud.storage", "google.cloud.run_v2", "grpc")
    assert not [m for m in at_import if m.startswith(clients)]
    assert needed in modules
    assert unneeded not in modules
    heavy = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NEVER))
    assert heavy == []
