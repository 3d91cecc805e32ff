"""``NIX_POPULARITY_URL``: http(s), gs:// and files, loaded once per process.

Each source is real: a local HTTP server, fake-gcs-server (the builder's
google-cloud-storage client with ``STORAGE_EMULATOR_HOST``), a file.
Popularity only tunes layering, so a bad URL leaves the build without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder_job import popularity
from builder_job.popularity import load_popularity
from tests.support.gcs_emulator import GcsEmulator, start_gcs_emulator
from tests.support.static_http import Answer, start_static_server

DATA = {"glibc-2.38": 40000, "zlib-1.3": 9000}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    load_popularity.cache_clear()
    yield
    load_popularity.cache_clear()


def test_http_is_fetched_once_per_process() -> None:
    server = start_static_server({"/popularity.json": Answer(json.dumps(DATA).encode())})
    try:
        url = f"{server.url}/popularity.json"
        assert load_popularity(url) == DATA
        assert load_popularity(url) == DATA
        assert server.count("/popularity.json") == 1
    finally:
        server.stop()


def test_files_by_path_or_file_url(tmp_path: Path) -> None:
    file = tmp_path / "popularity.json"
    file.write_text(json.dumps(DATA))
    assert load_popularity(str(file)) == DATA
    assert load_popularity(f"file://{file}") == DATA


@pytest.mark.integration
def test_gs_urls_read_the_object_with_the_storage_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator: GcsEmulator = start_gcs_emulator(tmp_path / "gcs")
    try:
        bucket = emulator.new_bucket()
        emulator.client().bucket(bucket).blob("data/popularity.json").upload_from_string(
            json.dumps(DATA)
        )
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "nixery-test")
        assert load_popularity(f"gs://{bucket}/data/popularity.json") == DATA
    finally:
        emulator.stop()


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"[1, 2]", 200), (b"not json", 200), (b'{"a": "many"}', 200), (b"", 404)],
)
def test_bad_data_is_logged_and_the_build_goes_on_without_it(
    body: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_static_server({"/p.json": Answer(body, status)})
    try:
        with caplog.at_level(logging.WARNING, logger=popularity.__name__):
            assert load_popularity(f"{server.url}/p.json") == {}
        assert "not used" in caplog.text
    finally:
        server.stop()


def test_no_url_is_no_data() -> None:
    assert load_popularity("") == {}
