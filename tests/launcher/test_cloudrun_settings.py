"""Settings and wiring for the Cloud Run launcher (``NIXERY_BUILDER_JOB``,
``NIXERY_CLOUD_RUN_ENDPOINT``, ``NIXERY_LAUNCHER=cloudrun``)."""

from __future__ import annotations

import pytest

from launcher.cloudrun import CloudRunLauncher
from launcher.local import LocalLauncher
from registry import wiring
from registry.settings import ConfigError, Settings

CHANNEL = {"NIXERY_CHANNEL": "nixos-unstable"}
JOB = "projects/nixery-test/locations/europe-west1/jobs/nixery-builder"


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({**CHANNEL, **env})
    return info.value.problems


@pytest.mark.parametrize(
    "job",
    [
        JOB,
        "projects/123456789012/locations/us-central1/jobs/b",
        "projects/example.com:nixery-test/locations/asia-northeast1/jobs/nixery-builder-2",
    ],
)
def test_cloudrun_launcher_from_settings(job: str) -> None:
    settings = Settings.from_env(
        {
            **CHANNEL,
            "NIXERY_LAUNCHER": "cloudrun",
            "NIXERY_BUILDER_JOB": f" {job} ",
            "NIXERY_CLOUD_RUN_ENDPOINT": "http://127.0.0.1:8123",
        }
    )
    assert (settings.builder_job, settings.cloud_run_endpoint) == (job, "http://127.0.0.1:8123")
    launcher = wiring.launcher(settings)
    assert isinstance(launcher, CloudRunLauncher)
    assert launcher.job == job


def test_defaults_are_google_and_local() -> None:
    settings = Settings.from_env(CHANNEL)
    assert (settings.builder_job, settings.cloud_run_endpoint) == ("", "")
    assert isinstance(wiring.launcher(settings), LocalLauncher)


def test_cloudrun_needs_the_job() -> None:
    assert problems_of({"NIXERY_LAUNCHER": "cloudrun"}) == [
        "NIXERY_LAUNCHER=cloudrun needs NIXERY_BUILDER_JOB "
        "(projects/PROJECT/locations/REGION/jobs/JOB)"
    ]


@pytest.mark.parametrize(
    "job",
    [
        "nixery-builder",
        "projects/nixery-test/locations/europe-west1/jobs/nixery-builder/executions/x",
        "projects/nixery-test/locations/europe-west1/services/nixery-builder",
        "projects/Nixery-Test/locations/europe-west1/jobs/nixery-builder",
        "projects/nixery-test/locations/global/jobs/nixery-builder",
        "projects/nixery-test/locations/europe-west1/jobs/nixery-builder-",
    ],
)
def test_job_must_be_a_full_name(job: str) -> None:
    assert problems_of({"NIXERY_LAUNCHER": "cloudrun", "NIXERY_BUILDER_JOB": job}) == [
        f"NIXERY_BUILDER_JOB={job!r} is not a job's full name: "
        "projects/PROJECT/locations/REGION/jobs/JOB"
    ]


def test_every_problem_is_named_at_once() -> None:
    problems = problems_of(
        {
            "NIXERY_LAUNCHER": "cloudrun",
            "NIXERY_BUILDER_JOB": "jobs/nixery-builder",
            "NIXERY_CLOUD_RUN_ENDPOINT": "127.0.0.1:8123",
            "NIX_TIMEOUT": "soon",
        }
    )
    assert len(problems) == 3
    assert any(p.startswith("NIXERY_BUILDER_JOB='jobs/nixery-builder'") for p in problems)
    assert "NIXERY_CLOUD_RUN_ENDPOINT='127.0.0.1:8123' is not an http(s) URL" in problems
    assert any(p.startswith("NIX_TIMEOUT='soon'") for p in problems)
