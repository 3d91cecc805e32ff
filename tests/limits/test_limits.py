"""The limits' settings and package patterns: pure, table-driven."""

from __future__ import annotations

import pytest

from metastore.records import BuildRecord, BuildState
from nixspec.names import validate_name
from ocimodel.errors import ErrorCode, RegistryError
from registry.limits import (
    DEFAULT_BUILD_TIMEOUT_S,
    DEFAULT_MAX_BUILDS,
    DEFAULT_MAX_BUILDS_PER_INSTANCE,
    DEFAULT_MAX_CLOSURE_MB,
    InstanceBuilds,
    LimitExceeded,
    Limits,
)
from registry.settings import ConfigError, Settings
from registry.specs import resolver_for, spec_for
from tests.conftest import PKGS


def limits(**env: str) -> Limits:
    return Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS), **env}).limits


def test_defaults() -> None:
    assert limits() == Limits(
        max_builds=DEFAULT_MAX_BUILDS,
        max_builds_per_instance=DEFAULT_MAX_BUILDS_PER_INSTANCE,
        build_timeout_s=DEFAULT_BUILD_TIMEOUT_S,
        max_closure_mb=DEFAULT_MAX_CLOSURE_MB,
    )
    settings = Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS)})
    assert settings.allow_unfree is False
    assert (settings.max_packages, settings.max_name_length) == (50, 255)


def test_values_are_read() -> None:
    assert limits(
        NIXERY_MAX_BUILDS="3",
        NIXERY_MAX_BUILDS_PER_INSTANCE="2",
        NIXERY_BUILD_TIMEOUT_S="90.5",
        NIXERY_MAX_CLOSURE_MB="100",
        NIXERY_ALLOW_PACKAGES=" hello, Python3Packages.* ,,",
        NIXERY_DENY_PACKAGES="*bitcoin*",
    ) == Limits(3, 2, 90.5, 100, ("hello", "python3packages.*"), ("*bitcoin*",))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NIXERY_MAX_BUILDS", "0"),
        ("NIXERY_MAX_BUILDS", "-1"),
        ("NIXERY_MAX_BUILDS", "two"),
        ("NIXERY_MAX_BUILDS", "1.5"),
        ("NIXERY_MAX_BUILDS_PER_INSTANCE", "0"),
        ("NIXERY_BUILD_TIMEOUT_S", "nan"),
        ("NIXERY_BUILD_TIMEOUT_S", "inf"),
        ("NIXERY_BUILD_TIMEOUT_S", "0"),
        ("NIXERY_MAX_CLOSURE_MB", "1e3"),
    ],
)
def test_bad_values_are_configuration_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        limits(**{name: value})
    [problem] = error.value.problems
    assert problem.startswith(f"{name}={value!r} is not ")


@pytest.mark.parametrize(
    ("allow", "deny", "packages", "refused"),
    [
        ((), (), ["hello", "git"], {}),
        (("hello",), (), ["hello", "cacert", "iana-etc"], {}),
        (("hello",), (), ["git", "hello"], {"git": "NIXERY_ALLOW_PACKAGES"}),
        (("python3packages.*",), (), ["python3Packages.numpy"], {}),
        (("python3packages.*",), (), ["python3"], {"python3": "NIXERY_ALLOW_PACKAGES"}),
        ((), ("*bitcoin*",), ["litecoind", "hello"], {}),
        (
            (),
            ("*bitcoin*",),
            ["electrum-bitcoin", "hello"],
            {"electrum-bitcoin": "NIXERY_DENY_PACKAGES"},
        ),
        (("*",), ("hello",), ["hello", "git"], {"hello": "NIXERY_DENY_PACKAGES"}),
        ((), ("cacert",), ["cacert"], {"cacert": "NIXERY_DENY_PACKAGES"}),
        ((), ("_7zz",), ["_7zz"], {"_7zz": "NIXERY_DENY_PACKAGES"}),
        (("hello",), (), ["bashInteractive"], {"bashInteractive": "NIXERY_ALLOW_PACKAGES"}),
        (("bashinteractive",), (), ["bashInteractive"], {}),
    ],
)
def test_package_patterns(
    allow: tuple[str, ...], deny: tuple[str, ...], packages: list[str], refused: dict[str, str]
) -> None:
    assert Limits(allow_packages=allow, deny_packages=deny).refused(packages) == refused


def test_refusal_is_denied_and_names_the_setting() -> None:
    with pytest.raises(RegistryError) as error:
        Limits(deny_packages=("hello",)).check_packages(["git", "hello"])
    assert error.value.code is ErrorCode.DENIED and error.value.status == 403
    assert "hello (NIXERY_DENY_PACKAGES)" in error.value.message
    assert error.value.detail == {
        "refused": [{"package": "hello", "limit": "NIXERY_DENY_PACKAGES"}]
    }


def test_closure_limit() -> None:
    Limits(max_closure_mb=1).check_closure(2**20)
    with pytest.raises(LimitExceeded) as error:
        Limits(max_closure_mb=1).check_closure(2**20 + 1)
    assert error.value.code is ErrorCode.DENIED
    assert "NIXERY_MAX_CLOSURE_MB" in str(error.value)
    assert error.value.detail["closure_bytes"] == 2**20 + 1


def build(build_id: str, state: BuildState, lease_until: float) -> BuildRecord:
    return BuildRecord(build_id, "k", "i", state, 0.0, 0.0, lease_until)


class Records:
    def __init__(self, *builds: BuildRecord) -> None:
        self.builds = {b.build_id: b for b in builds}
        self.reads = 0

    def get_build(self, build_id: str) -> BuildRecord | None:
        self.reads += 1
        return self.builds.get(build_id)


def test_instance_builds_forget_finished_and_dead_ones() -> None:
    records = Records(
        build("live", BuildState.RUNNING, 100.0),
        build("dead", BuildState.RUNNING, 10.0),
        build("done", BuildState.SUCCEEDED, 100.0),
    )
    started = InstanceBuilds()
    for build_id in ("live", "dead", "done", "gone"):
        started.add(build_id)
    assert started.active(records, now=50.0, enough=10) == 4  # below the limit: no reads
    assert records.reads == 0
    assert started.active(records, now=50.0, enough=2) == 1
    assert records.reads == 4
    assert started.active(records, now=50.0, enough=2) == 1  # forgotten: nothing to read
    assert records.reads == 4


@pytest.mark.parametrize(
    ("name", "setting"),
    [
        ("a" * 300, "NIXERY_MAX_NAME_LENGTH"),
        ("/".join(f"p{i}" for i in range(60)), "NIXERY_MAX_PACKAGES"),
    ],
)
def test_name_limits_name_their_setting(name: str, setting: str) -> None:
    settings = Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS)})
    with pytest.raises(RegistryError) as error:
        spec_for(settings, resolver_for(settings), name, "latest")
    assert error.value.code is ErrorCode.NAME_INVALID and error.value.status == 400
    assert f"({setting})" in error.value.message


def test_name_length_answer_of_validate_name() -> None:
    with pytest.raises(RegistryError) as error:
        validate_name("a" * 300)
    assert "the limit is 255 (NIXERY_MAX_NAME_LENGTH)" in error.value.message
