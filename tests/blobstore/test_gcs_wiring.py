"""``NIXERY_STORAGE_BACKEND=gcs`` from the environment to a signed URL.

The settings are read the way the functions read them, the store comes from
:func:`registry.wiring.blob_store`, and the signer is chosen from the
process's own credentials (``GOOGLE_APPLICATION_CREDENTIALS``): a key file
signs locally; with ``NIXERY_SIGNING_SERVICE_ACCOUNT`` naming another
account, the key file's identity gets an access token (from the fake IAM
server's token endpoint) and IAM signs as that account.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from blobstore.gcs import GcsBlobStore
from ocimodel.digest import sha256_digest
from registry import wiring
from registry.settings import ConfigError, Settings
from tests.support.fake_iam import start_fake_iam
from tests.support.gcs_emulator import GcsEmulator
from tests.support.service_account import ServiceAccountKey, make_key
from tests.support.v4_signature import verify_v4_url

REPO = Path(__file__).resolve().parents[2]
TOKEN = "ya29.caller-token"


def test_signing_settings_defaults() -> None:
    settings = Settings.from_env({"NIXERY_CHANNEL": "nixos-unstable"})
    assert settings.signed_url_ttl_s == 600
    assert settings.signing_service_account == ""
    assert settings.iam_endpoint == "https://iamcredentials.googleapis.com"


def test_every_signing_problem_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "NIXERY_CHANNEL": "nixos-unstable",
                "NIXERY_STORAGE_BACKEND": "gcs",
                "NIXERY_METADATA_BACKEND": "sqlite",
                "NIXERY_SIGNED_URL_TTL_S": "ten minutes",
                "NIXERY_SIGNING_SERVICE_ACCOUNT": "runtime",
                "NIXERY_IAM_ENDPOINT": "iamcredentials.googleapis.com",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 4, problems
    for name in (
        "GCS_BUCKET",
        "NIXERY_SIGNED_URL_TTL_S",
        "NIXERY_SIGNING_SERVICE_ACCOUNT",
        "NIXERY_IAM_ENDPOINT",
    ):
        assert name in problems
    with pytest.raises(ConfigError, match="at most 604800 s"):
        Settings.from_env({"NIXERY_CHANNEL": "x", "NIXERY_SIGNED_URL_TTL_S": "604801"})


def _gcs_settings(emulator: GcsEmulator, bucket: str, tmp_path: Path, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "NIXERY_CHANNEL": "nixos-unstable",
            "NIXERY_STORAGE_BACKEND": "gcs",
            "NIXERY_METADATA_BACKEND": "sqlite",  # only the blob store is under test
            "GCS_BUCKET": bucket,
            "NIXERY_SIGNED_URL_TTL_S": "300",
            "NIXERY_WORK_DIR": str(tmp_path / "work"),
            **extra,
        }
    )


def _stored(store: GcsBlobStore, data: bytes) -> str:
    digest = sha256_digest(data)
    store.put_bytes(digest, data, "application/octet-stream")
    return digest


def test_wired_store_signs_with_the_key_file(
    gcs_emulator: GcsEmulator,
    bucket: str,
    signing_key: ServiceAccountKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    key_file = signing_key.write(tmp_path / "key.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    store = wiring.blob_store(_gcs_settings(gcs_emulator, bucket, tmp_path))
    assert isinstance(store, GcsBlobStore)
    assert store.scratch_dir() == tmp_path / "work" / "scratch"
    data = b"wired from the environment"
    url = store.redirect_url(_stored(store, data))
    signed = verify_v4_url(url, signing_key.private_key.public_key())
    assert (signed.email, signed.expires_s) == (signing_key.email, 300)
    assert url.startswith(gcs_emulator.endpoint + f"/{bucket}/blobs/sha256/")
    assert requests.get(url, timeout=10).content == data


def test_wired_store_signs_through_iam_as_the_named_account(
    gcs_emulator: GcsEmulator,
    bucket: str,
    runtime_key: ServiceAccountKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    iam = start_fake_iam({runtime_key.email: runtime_key.private_key}, TOKEN)
    try:
        caller = make_key("caller")  # the process's identity: may sign as runtime
        key_file = caller.write(tmp_path / "caller.json", token_uri=f"{iam.endpoint}/token")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
        settings = _gcs_settings(
            gcs_emulator,
            bucket,
            tmp_path,
            NIXERY_SIGNING_SERVICE_ACCOUNT=runtime_key.email,
            NIXERY_IAM_ENDPOINT=iam.endpoint,
        )
        store = wiring.blob_store(settings)
        assert isinstance(store, GcsBlobStore)
        url = store.redirect_url(_stored(store, b"signed by IAM, wired"))
        signed = verify_v4_url(url, runtime_key.private_key.public_key())
        assert signed.email == runtime_key.email
        [request] = iam.sign_requests()
        assert request.email == runtime_key.email
        assert request.authorization == f"Bearer {TOKEN}"
        assert request.payload == signed.string_to_sign.encode()
        assert iam.token_grants == 1
    finally:
        iam.stop()


def test_embedded_store_never_imports_google_libraries(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from registry import wiring\n"
        "from registry.settings import Settings\n"
        "settings = Settings.from_env({'NIXERY_CHANNEL': 'nixos-unstable',"
        f" 'STORAGE_PATH': {str(tmp_path)!r}}})\n"
        "wiring.blob_store(settings)\n"
        # Namespace packages ("google", "google.cloud") are made at start-up
        # by a .pth file of functions-framework; count only real modules.
        "print(sorted(m for m, module in sys.modules.items()\n"
        "             if m.startswith('google') and getattr(module, '__file__', None)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
