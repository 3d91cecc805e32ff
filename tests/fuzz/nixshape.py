"""The only shapes a Nix command line may have, and the proof that image
names reach Nix as JSON data only.

The registry runs four Nix commands (:mod:`nixspec.invocation`). Names taken
from a request may appear in exactly one place: inside the one JSON string
passed as ``--argstr request``, which ``resolve.nix`` decodes with
``builtins.fromJSON``. Every other argument is a constant, a path the
builder chose (GC roots under its work directory) or a store path Nix itself
printed. :func:`check_argv` checks one command line against that and returns
the names found in its JSON request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from nixspec.invocation import NIX_COMMAND, RESOLVE_NIX

EVAL_PREFIX = (
    "nix-instantiate",
    "--eval",
    "--strict",
    "--json",
    "--read-write-mode",
    str(RESOLVE_NIX),
    "--argstr",
    "request",
)
# A store path as Nix prints it; a derivation with its wanted outputs.
STORE_PATH = re.compile(r"/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+")
INSTALLABLE = re.compile(STORE_PATH.pattern + r"\.drv![A-Za-z0-9_-]+(?:,[A-Za-z0-9_-]+)*")
REQUEST_KEYS = {"source", "system", "allowUnfree", "names", "explain", "probe"}


class BadNixCall(AssertionError):
    pass


def _store_paths(argv: Sequence[str], pattern: re.Pattern[str]) -> None:
    for arg in argv:
        if not pattern.fullmatch(arg):
            raise BadNixCall(f"not a store path: {arg!r} in {list(argv)!r}")


def check_argv(argv: Sequence[str], work_dir: str = "") -> list[str]:
    """Raise :class:`BadNixCall` unless ``argv`` is one of the registry's Nix
    command lines; return the names inside its JSON request (if any)."""
    argv = list(argv)
    command = argv[0].rsplit("/", 1)[-1] if argv else ""
    if command == "nix-instantiate":
        if tuple(argv[1 : len(EVAL_PREFIX)]) != EVAL_PREFIX[1:]:
            raise BadNixCall(f"unexpected evaluation: {argv!r}")
        if len(argv) != len(EVAL_PREFIX) + 1:
            raise BadNixCall(f"evaluation with extra arguments: {argv!r}")
        request = json.loads(argv[-1])
        if set(request) != REQUEST_KEYS:
            raise BadNixCall(f"unexpected request keys: {sorted(request)}")
        names = request["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadNixCall(f"names are not a list of strings: {names!r}")
        explain = request["explain"]
        return [*names, *([explain] if isinstance(explain, str) else [])]
    if command == "nix-store" and argv[1:3] == ["--realise", "--keep-going"]:
        if argv[3] != "--add-root" or argv[5] != "--indirect":
            raise BadNixCall(f"unexpected realisation: {argv!r}")
        if work_dir and not argv[4].startswith(work_dir.rstrip("/") + "/"):
            raise BadNixCall(f"GC root outside the work directory: {argv[4]!r}")
        _store_paths(argv[6:], INSTALLABLE)
        return []
    if command == "nix-store" and argv[1:3] == ["--check-validity", "--print-invalid"]:
        _store_paths(argv[3:], STORE_PATH)
        return []
    if command == "nix" and argv[1:6] == [*NIX_COMMAND, "path-info", "--json", "--recursive"]:
        _store_paths(argv[6:], STORE_PATH)
        return []
    raise BadNixCall(f"a Nix command the registry never runs: {argv!r}")
