"""Configuration from the environment (`registry.settings`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixspec.sources import DEFAULT_CHANNEL_BASE, ConfiguredSource
from nixspec.spec import SourceKind
from registry.settings import DEFAULT_LAYER_BUDGET, ConfigError, Settings

CHANNEL = {"NIXERY_CHANNEL": "nixos-unstable"}
# Firestore metadata (the default beside object storage) needs a project.
PROJECT = {"GOOGLE_CLOUD_PROJECT": "nixery-test"}


def problems_of(env: dict[str, str], **kwargs: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env, **kwargs)
    assert str(info.value).startswith("invalid configuration:\n")
    for problem in info.value.problems:
        assert f"  - {problem}" in str(info.value)
    return info.value.problems


# -- package sources --------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "source"),
    [
        pytest.param(
            {"NIXERY_CHANNEL": "nixos-24.05"},
            ConfiguredSource(SourceKind.CHANNEL, "nixos-24.05"),
            id="channel",
        ),
        pytest.param(
            {"NIXERY_CHANNEL": "0123456789abcdef0123456789abcdef01234567"},
            ConfiguredSource(SourceKind.CHANNEL, "0123456789abcdef0123456789abcdef01234567"),
            id="channel-commit",
        ),
        pytest.param(
            {"NIXERY_PKGS_REPO": "https://example.org/pkgs.git"},
            ConfiguredSource(SourceKind.GIT, "https://example.org/pkgs.git"),
            id="git",
        ),
        pytest.param(
            {"NIXERY_CHANNEL": "  nixos-unstable \n"},
            ConfiguredSource(SourceKind.CHANNEL, "nixos-unstable"),
            id="whitespace-stripped",
        ),
        pytest.param(
            {"NIXERY_CHANNEL": "nixos-unstable", "NIXERY_PKGS_REPO": "  "},
            ConfiguredSource(SourceKind.CHANNEL, "nixos-unstable"),
            id="blank-is-unset",
        ),
    ],
)
def test_one_package_source(env: dict[str, str], source: ConfiguredSource) -> None:
    settings = Settings.from_env(env)
    assert settings.source == source
    assert settings.source_is_default is False


def test_path_source_is_resolved_and_needs_default_nix(tmp_path: Path) -> None:
    (tmp_path / "pkgs").mkdir()
    (tmp_path / "pkgs" / "default.nix").write_text("{ ... }: { }")
    relative = str(tmp_path / "pkgs" / ".." / "pkgs")
    settings = Settings.from_env({"NIXERY_PKGS_PATH": relative})
    assert settings.source == ConfiguredSource(SourceKind.PATH, str((tmp_path / "pkgs").resolve()))


def test_path_source_without_default_nix(tmp_path: Path) -> None:
    assert problems_of({"NIXERY_PKGS_PATH": str(tmp_path)}) == [
        f"NIXERY_PKGS_PATH={str(tmp_path)!r} has no default.nix"
    ]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param(
            {"NIXERY_CHANNEL": "a", "NIXERY_PKGS_REPO": "b"},
            "NIXERY_CHANNEL and NIXERY_PKGS_REPO",
            id="channel-and-repo",
        ),
        pytest.param(
            {"NIXERY_PKGS_REPO": "b", "NIXERY_PKGS_PATH": "/nonexistent"},
            "NIXERY_PKGS_REPO and NIXERY_PKGS_PATH",
            id="repo-and-path",
        ),
        pytest.param(
            {"NIXERY_CHANNEL": "a", "NIXERY_PKGS_REPO": "b", "NIXERY_PKGS_PATH": "/x"},
            "NIXERY_CHANNEL and NIXERY_PKGS_REPO and NIXERY_PKGS_PATH",
            id="all-three",
        ),
    ],
)
def test_two_sources_are_an_error_not_a_silent_choice(env: dict[str, str], named: str) -> None:
    problems = problems_of(env)
    assert f"set only one package source, not {named}" in problems


def test_no_source_is_an_error_without_a_default() -> None:
    assert problems_of({}) == [
        "no package source: set NIXERY_CHANNEL, NIXERY_PKGS_REPO or NIXERY_PKGS_PATH"
    ]


def test_default_channel_when_no_source_is_set() -> None:
    settings = Settings.from_env({}, default_channel="nixos-unstable")
    assert settings.source == ConfiguredSource(SourceKind.CHANNEL, "nixos-unstable")
    assert settings.source_is_default is True


def test_a_set_source_beats_the_default_channel() -> None:
    settings = Settings.from_env({"NIXERY_PKGS_REPO": "r"}, default_channel="nixos-unstable")
    assert settings.source == ConfiguredSource(SourceKind.GIT, "r")
    assert settings.source_is_default is False


# -- values -------------------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings.from_env(CHANNEL)
    assert settings.port == 8080
    assert settings.storage_backend == "filesystem"
    assert settings.metadata_backend == "sqlite"
    assert settings.launcher == "local"
    assert settings.nix_timeout_s == 60.0
    assert settings.popularity_url == ""
    assert settings.layer_budget == DEFAULT_LAYER_BUDGET == 94
    assert settings.max_packages == 50
    assert settings.max_name_length == 255
    assert settings.allow_unfree is False
    assert settings.build_wait_s == 600.0
    assert settings.lease_s == 30.0
    assert settings.failure_ttl_s == 60.0
    assert settings.source_ttl_s == 10.0
    assert settings.channel_url == DEFAULT_CHANNEL_BASE
    assert settings.work_dir == Path("/tmp/nixery-builds")
    assert settings.gcs_bucket == ""
    assert settings.sqlite_path is None


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "value"),
    [
        pytest.param("PORT", "9000", "port", 9000, id="port"),
        pytest.param("PORT", " 9000 ", "port", 9000, id="port-whitespace"),
        pytest.param("PORT", "", "port", 8080, id="port-empty-is-default"),
        pytest.param("NIX_TIMEOUT", "2.5", "nix_timeout_s", 2.5, id="nix-timeout"),
        pytest.param(
            "NIX_POPULARITY_URL",
            "https://p/x.json",
            "popularity_url",
            "https://p/x.json",
            id="popularity",
        ),
        pytest.param("NIXERY_LAYER_BUDGET", "120", "layer_budget", 120, id="budget-at-max"),
        pytest.param("NIXERY_LAYER_BUDGET", "1", "layer_budget", 1, id="budget-one"),
        pytest.param("NIXERY_MAX_PACKAGES", "7", "max_packages", 7, id="max-packages"),
        pytest.param("NIXERY_MAX_NAME_LENGTH", "64", "max_name_length", 64, id="max-name"),
        pytest.param("NIXERY_BUILD_WAIT_S", "0.5", "build_wait_s", 0.5, id="build-wait"),
        pytest.param("NIXERY_LEASE_S", "12", "lease_s", 12.0, id="lease"),
        pytest.param("NIXERY_FAILURE_TTL_S", "0", "failure_ttl_s", 0.0, id="failure-ttl-zero"),
        pytest.param("NIXERY_SOURCE_TTL_S", "0", "source_ttl_s", 0.0, id="source-ttl-zero"),
        pytest.param(
            "NIXERY_CHANNEL_URL", "http://mirror", "channel_url", "http://mirror", id="channel-url"
        ),
        pytest.param("NIXERY_WORK_DIR", "/var/tmp/w", "work_dir", Path("/var/tmp/w"), id="work"),
        pytest.param("STORAGE_PATH", "/srv/blobs", "storage_path", Path("/srv/blobs"), id="store"),
        pytest.param(
            "NIXERY_SQLITE_PATH", "/srv/m.db", "sqlite_path", Path("/srv/m.db"), id="sqlite"
        ),
        pytest.param("NIXERY_LAUNCHER", "cloudrun", "launcher", "cloudrun", id="launcher"),
        pytest.param(
            "NIXERY_METADATA_BACKEND", "firestore", "metadata_backend", "firestore", id="metadata"
        ),
        pytest.param("NIXERY_STORAGE_BACKEND", "s3", "storage_backend", "s3", id="s3"),
    ],
)
def test_values(variable: str, raw: str, attribute: str, value: object) -> None:
    job = {"NIXERY_BUILDER_JOB": "projects/nixery-test/locations/europe-west1/jobs/builder"}
    bucket = {"S3_BUCKET": "layers"}  # what the s3 backend needs besides
    settings = Settings.from_env({**CHANNEL, **PROJECT, **job, **bucket, variable: raw})
    assert getattr(settings, attribute) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *[pytest.param(r, True, id=f"true-{r}") for r in ("1", "true", "TRUE", "yes", "On")],
        *[pytest.param(r, False, id=f"false-{r}") for r in ("0", "false", "No", "off", "")],
    ],
)
def test_allow_unfree_boolean(raw: str, value: bool) -> None:
    assert Settings.from_env({**CHANNEL, "NIXERY_ALLOW_UNFREE": raw}).allow_unfree is value


def test_home_is_expanded_in_paths() -> None:
    settings = Settings.from_env({**CHANNEL, "STORAGE_PATH": "~/blobs"})
    assert settings.storage_path == Path("~/blobs").expanduser()
    assert "~" not in str(settings.storage_path)


@pytest.mark.parametrize(
    ("env", "metadata_path"),
    [
        pytest.param({"STORAGE_PATH": "/srv/n"}, Path("/srv/n/metadata.sqlite3"), id="beside"),
        pytest.param(
            {"STORAGE_PATH": "/srv/n", "NIXERY_SQLITE_PATH": "/db/m.sqlite3"},
            Path("/db/m.sqlite3"),
            id="explicit",
        ),
    ],
)
def test_metadata_path(env: dict[str, str], metadata_path: Path) -> None:
    assert Settings.from_env({**CHANNEL, **env}).metadata_path == metadata_path


@pytest.mark.parametrize(
    ("env", "metadata_backend"),
    [
        pytest.param({}, "sqlite", id="filesystem-sqlite"),
        pytest.param({"NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": "b"}, "firestore", id="gcs"),
        pytest.param({"NIXERY_STORAGE_BACKEND": "s3", "S3_BUCKET": "layers"}, "sqlite", id="s3"),
        pytest.param(
            {
                "NIXERY_STORAGE_BACKEND": "gcs",
                "GCS_BUCKET": "b",
                "NIXERY_METADATA_BACKEND": "sqlite",
            },
            "sqlite",
            id="explicit-wins",
        ),
    ],
)
def test_metadata_backend_follows_storage(env: dict[str, str], metadata_backend: str) -> None:
    assert Settings.from_env({**CHANNEL, **PROJECT, **env}).metadata_backend == metadata_backend


def test_gcs_bucket_is_kept() -> None:
    env = {**CHANNEL, **PROJECT, "NIXERY_STORAGE_BACKEND": "gcs", "GCS_BUCKET": " my-bucket "}
    assert Settings.from_env(env).gcs_bucket == "my-bucket"


# -- problems -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "problem"),
    [
        pytest.param("PORT", "http", "PORT='http' is not a port number", id="port-word"),
        pytest.param("PORT", "0", "PORT='0' is not a port number", id="port-zero"),
        pytest.param("PORT", "-80", "PORT='-80' is not a port number", id="port-negative"),
        pytest.param("PORT", "80.5", "PORT='80.5' is not a port number", id="port-fraction"),
        pytest.param(
            "NIX_TIMEOUT", "soon", "NIX_TIMEOUT='soon' is not a number of seconds", id="timeout"
        ),
        pytest.param(
            "NIX_TIMEOUT", "0", "NIX_TIMEOUT='0' is not a number of seconds", id="timeout-zero"
        ),
        pytest.param(
            "NIXERY_LAYER_BUDGET",
            "0",
            "NIXERY_LAYER_BUDGET='0' is not a positive integer",
            id="budget-zero",
        ),
        pytest.param(
            "NIXERY_LAYER_BUDGET",
            "121",
            "NIXERY_LAYER_BUDGET=121: Docker refuses images of more than about 125 layers; "
            "use at most 120",
            id="budget-over-docker-limit",
        ),
        pytest.param(
            "NIXERY_MAX_PACKAGES",
            "-1",
            "NIXERY_MAX_PACKAGES='-1' is not a positive integer",
            id="max-packages",
        ),
        pytest.param(
            "NIXERY_MAX_NAME_LENGTH",
            "x",
            "NIXERY_MAX_NAME_LENGTH='x' is not a positive integer",
            id="max-name",
        ),
        pytest.param(
            "NIXERY_ALLOW_UNFREE",
            "maybe",
            "NIXERY_ALLOW_UNFREE='maybe' is not true or false",
            id="boolean",
        ),
        pytest.param(
            "NIXERY_LEASE_S", "0", "NIXERY_LEASE_S='0' is not a number of seconds", id="lease"
        ),
        pytest.param(
            "NIXERY_BUILD_WAIT_S",
            "-5",
            "NIXERY_BUILD_WAIT_S='-5' is not a number of seconds",
            id="build-wait",
        ),
        pytest.param(
            "NIXERY_FAILURE_TTL_S",
            "1m",
            "NIXERY_FAILURE_TTL_S='1m' is not a number of seconds",
            id="failure-ttl",
        ),
        pytest.param(
            "NIXERY_STORAGE_BACKEND",
            "s4",
            "NIXERY_STORAGE_BACKEND='s4' must be one of filesystem, gcs, s3",
            id="storage-backend",
        ),
        pytest.param(
            "NIXERY_STORAGE_BACKEND",
            "gcs",
            "NIXERY_STORAGE_BACKEND=gcs needs GCS_BUCKET",
            id="gcs-without-bucket",
        ),
        pytest.param(
            "NIXERY_METADATA_BACKEND",
            "redis",
            "NIXERY_METADATA_BACKEND='redis' must be one of sqlite, firestore",
            id="metadata-backend",
        ),
        pytest.param(
            "NIXERY_LAUNCHER",
            "k8s",
            "NIXERY_LAUNCHER='k8s' must be one of local, cloudrun",
            id="launcher",
        ),
    ],
)
def test_each_problem_is_named(variable: str, raw: str, problem: str) -> None:
    assert problems_of({**CHANNEL, **PROJECT, variable: raw}) == [problem]


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "value"),
    [
        pytest.param("PORT", "65535", "port", 65535, id="port-65535"),
        pytest.param("PORT", "1", "port", 1, id="port-1"),
        pytest.param("NIX_TIMEOUT", "0.001", "nix_timeout_s", 0.001, id="timeout-tiny"),
    ],
)
def test_boundary_values_are_accepted(
    variable: str, raw: str, attribute: str, value: object
) -> None:
    assert getattr(Settings.from_env({**CHANNEL, variable: raw}), attribute) == value


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        pytest.param(
            "PORT",
            "65536",
            id="port-above-65535",
        ),
        pytest.param(
            "NIX_TIMEOUT",
            "nan",
            id="timeout-nan",
        ),
    ],
)
def test_out_of_range_values_are_problems(variable: str, raw: str) -> None:
    problems = problems_of({**CHANNEL, variable: raw})
    assert any(p.startswith(f"{variable}=") for p in problems)


def test_every_problem_is_named_at_once() -> None:
    env = {
        "NIXERY_CHANNEL": "a",
        "NIXERY_PKGS_REPO": "b",
        "PORT": "x",
        "NIX_TIMEOUT": "-1",
        "NIXERY_STORAGE_BACKEND": "gcs",
        "NIXERY_ALLOW_UNFREE": "perhaps",
        "NIXERY_LAYER_BUDGET": "500",
        "NIXERY_LAUNCHER": "nomad",
        **PROJECT,
    }
    problems = problems_of(env)
    assert len(problems) == 7
    for fragment in (
        "set only one package source",
        "PORT=",
        "NIX_TIMEOUT=",
        "GCS_BUCKET",
        "NIXERY_ALLOW_UNFREE=",
        "NIXERY_LAYER_BUDGET=500",
        "NIXERY_LAUNCHER=",
    ):
        assert sum(fragment in p for p in problems) == 1, fragment


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(CHANNEL)
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
