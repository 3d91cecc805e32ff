"""Every ``nixery`` subcommand explains itself: examples and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from registry.settings import ConfigError, Settings
from tests.conftest import PKGS

NIXERY = str(Path(sys.executable).parent / "nixery")


@pytest.mark.parametrize("command", [[], ["serve"], ["build"], ["prebuild"], ["popcount"]])
def test_help_has_examples_and_exit_codes(command: list[str]) -> None:
    result = subprocess.run([NIXERY, *command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    examples = result.stdout.split("examples:\n", 1)[1].split("exit codes:")[0]
    assert "nixery " in examples
    assert "exit codes:" in result.stdout
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in result.stdout


def test_an_unknown_subcommand_is_a_usage_error() -> None:
    result = subprocess.run([NIXERY, "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"NIXERY_TRIGGER_AUDIENCE": "https://x"}, "needs both"),
        ({"NIXERY_TRIGGER_ALLOWED_SA": "a@b.iam.gserviceaccount.com"}, "needs both"),
        (
            {"NIXERY_TRIGGER_AUDIENCE": "https://x", "NIXERY_TRIGGER_ALLOWED_SA": "nobody"},
            "not a service account email",
        ),
        ({"NIXERY_TRIGGER_CERTS_URL": "ftp://certs"}, "NIXERY_TRIGGER_CERTS_URL"),
    ],
)
def test_trigger_settings_are_checked(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        Settings.from_env({"NIXERY_PKGS_PATH": str(PKGS), **env})


def test_trigger_settings_read_a_list_of_accounts() -> None:
    settings = Settings.from_env(
        {
            "NIXERY_PKGS_PATH": str(PKGS),
            "NIXERY_TRIGGER_AUDIENCE": "https://r.example/_nixery/prebuild",
            "NIXERY_TRIGGER_ALLOWED_SA": " a@p.iam.gserviceaccount.com,b@p.iam.gserviceaccount.com",
        }
    )
    assert settings.trigger_allowed_sa == (
        "a@p.iam.gserviceaccount.com",
        "b@p.iam.gserviceaccount.com",
    )
    assert settings.trigger_certs_url == "https://www.googleapis.com/oauth2/v1/certs"
