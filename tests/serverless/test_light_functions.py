"""The functions import only what they serve: no Nix, tar or layering code,
and each only the Google library of its own backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GCP_ENV = {
    "NIXERY_PKGS_PATH": str(REPO / "tests" / "pkgs"),
    "NIXERY_STORAGE_BACKEND": "gcs",
    "GCS_BUCKET": "bucket",
    "GOOGLE_CLOUD_PROJECT": "nixery-test",
    "NIXERY_LAUNCHER": "cloudrun",
    "NIXERY_BUILDER_JOB": "projects/nixery-test/locations/europe-west1/jobs/nixery-builder",
    # Clients are constructed but never contacted by an import.
    "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9",
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
}
PROBE = """
import json, sys, functions_framework
functions_framework.create_app(sys.argv[1], sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""
NEVER = ("tarfile", "gzip", "builder_job", "layering", "nixspec.realise", "nixspec.runner")


def loaded_modules(target: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NIXERY_", "GOOGLE_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, target, str(REPO / "functions" / target / "main.py")],
        env={**env, **GCP_ENV},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("target", "needed", "unneeded"),
    [
        ("manifest", "google.cloud.firestore", "google.cloud.storage"),
        ("blob", "google.cloud.storage", "google.cloud.firestore"),
    ],
)
def test_function_imports_only_what_it_needs(target: str, needed: str, unneeded: str) -> None:
    modules = loaded_modules(target)
    assert needed in modules
    assert unneeded not in modules
    heavy = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NEVER))
    assert heavy == []
