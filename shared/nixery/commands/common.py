"""What every subcommand shares: exit codes, one-line errors, settings.

Exit codes (also in ``nixery --help`` and the README):

====  ======================================================================
0     success
1     the work failed: a build failed, a prebuild image failed, popcount
      could not download everything (each reason is printed)
2     bad usage or configuration (every problem is printed, on one line)
130   interrupted (Ctrl-C); builds already dispatched go on
====  ======================================================================
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path

from registry.settings import DEFAULT_CHANNEL, Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """exit codes:
  0    success
  1    the work failed (a build, an image of a prebuild, a download); reasons printed
  2    bad usage or configuration; every problem printed
  130  interrupted; builds already dispatched go on
"""

log = logging.getLogger("nixery")


class CliError(Exception):
    """A problem to print as one line ``nixery: <message>`` and exit with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def configure_cli_logging(verbose: bool) -> None:
    """Readable lines on stderr: warnings (everything with ``-v``). The JSON
    lines of :func:`registry.logs.configure_logging` are for servers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nixery: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (``export`` and shell quoting allowed; ``#`` comments),
    e.g. a deployment's settings written from Terraform's outputs."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from exc
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            words = shlex.split(stripped.removeprefix("export "), comments=True)
        except ValueError as exc:
            raise CliError(f"{path}:{number}: {exc}", EXIT_USAGE) from exc
        if len(words) != 1 or "=" not in words[0]:
            raise CliError(f"{path}:{number}: expected NAME=value", EXIT_USAGE)
        name, _, value = words[0].partition("=")
        values[name] = value
    return values


def load_settings(deployment: str | None = None, *, default_channel: bool = True) -> Settings:
    """The settings from the environment, overlaid with a deployment file.

    The file's values go into ``os.environ`` too: local builder processes
    and in-process adapters read the same environment."""
    if deployment:
        os.environ.update(read_env_file(Path(deployment)))
    settings = Settings.from_env(default_channel=DEFAULT_CHANNEL if default_channel else None)
    if settings.source_is_default:
        # Builders read the environment themselves: make the default explicit.
        os.environ["NIXERY_CHANNEL"] = settings.source.location
        log.warning(
            "no package source configured: using the nixpkgs channel %s "
            "(set NIXERY_CHANNEL, NIXERY_PKGS_REPO or NIXERY_PKGS_PATH)",
            settings.source.location,
        )
    return settings
