"""``NIXERY_STORAGE_BACKEND=s3`` from the environment to a served URL.

Settings are read as the processes read them, every problem named at once;
the store comes from :func:`registry.wiring.blob_store` and finds its
credentials through the standard AWS chain (here: the ``AWS_*`` variables,
with the machine's config files kept out), and nothing of boto3 is loaded
unless S3 is configured.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import requests

from blobstore.s3 import S3BlobStore
from ocimodel.digest import sha256_digest
from registry import wiring
from registry.settings import ConfigError, Settings
from tests.support.moto_server import MotoServer, moto_s3  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parents[2]
BASE = {"NIXERY_CHANNEL": "nixos-unstable"}


def test_s3_settings_and_their_defaults() -> None:
    settings = Settings.from_env({**BASE, "NIXERY_STORAGE_BACKEND": "s3", "S3_BUCKET": "layers"})
    assert settings.s3_bucket == "layers"
    assert (settings.s3_endpoint_url, settings.s3_region) == ("", "")
    assert settings.s3_conditional_writes == "auto"
    assert settings.signed_url_ttl_s == 600
    # S3 users are seldom on Google Cloud: metadata stays local unless asked.
    assert settings.metadata_backend == "sqlite"
    gcs = {**BASE, "NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": "b", "GOOGLE_CLOUD_PROJECT": "p"}
    assert Settings.from_env(gcs).metadata_backend == "firestore"


def test_every_s3_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                **BASE,
                "NIXERY_STORAGE_BACKEND": "s3",
                "S3_BUCKET": "Layers_Bucket",
                "NIXERY_S3_ENDPOINT_URL": "minio:9000",
                "AWS_REGION": "us east",
                "NIXERY_S3_CONDITIONAL_WRITES": "sometimes",
                "NIXERY_SIGNED_URL_TTL_S": "604801",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 5, problems
    for name in (
        "S3_BUCKET",
        "NIXERY_S3_ENDPOINT_URL",
        "AWS_REGION",
        "NIXERY_S3_CONDITIONAL_WRITES",
        "NIXERY_SIGNED_URL_TTL_S",
    ):
        assert name in problems
    with pytest.raises(ConfigError, match="NIXERY_STORAGE_BACKEND=s3 needs S3_BUCKET"):
        Settings.from_env({**BASE, "NIXERY_STORAGE_BACKEND": "s3"})


def test_aws_region_is_only_judged_for_s3() -> None:
    # Other tools read AWS_REGION too; a filesystem registry has no opinion.
    assert Settings.from_env({**BASE, "AWS_REGION": "us east"}).storage_backend == "filesystem"


def test_wired_store_uses_the_aws_chain(
    moto_s3: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = moto_s3.new_bucket()
    env = {**moto_s3.env(bucket), "AWS_REGION": "eu-west-3"}
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)  # what boto3 reads by itself
    settings = Settings.from_env(
        {
            **BASE,
            **env,
            "NIXERY_S3_CONDITIONAL_WRITES": "on",
            "NIXERY_SIGNED_URL_TTL_S": "120",
            "NIXERY_WORK_DIR": str(tmp_path / "work"),
        }
    )
    store = wiring.blob_store(settings)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.conditional_writes) == (bucket, "on")
    assert store.scratch_dir() == tmp_path / "work" / "scratch"
    data = b"wired from the environment"
    digest = sha256_digest(data)
    store.put_bytes(digest, data, "application/octet-stream")
    url = store.redirect_url(digest)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    credential = query["X-Amz-Credential"][0].split("/")
    assert (credential[0], credential[2], credential[3]) == (
        env["AWS_ACCESS_KEY_ID"],
        "eu-west-3",
        "s3",
    )
    assert url.startswith(f"{moto_s3.endpoint}/{bucket}/blobs/sha256/")
    assert requests.get(url, timeout=10).content == data


def test_embedded_store_never_imports_boto3(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from registry import wiring\n"
        "from registry.settings import Settings\n"
        "settings = Settings.from_env({'NIXERY_CHANNEL': 'nixos-unstable',"
        f" 'STORAGE_PATH': {str(tmp_path)!r}}})\n"
        "wiring.blob_store(settings)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
