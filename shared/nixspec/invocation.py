"""The Nix command lines, and the parsing of what they print: pure.

Three commands make an image's store paths:

1. ``nix-instantiate --eval --strict --json --read-write-mode resolve.nix
   --argstr request JSON``: resolves every name at once (see
   ``nix/resolve.nix``); names travel inside the JSON string, never as Nix
   code. ``--read-write-mode`` makes evaluating ``drvPath`` write the ``.drv``
   files the next step builds.
2. ``nix-store --realise --keep-going --add-root DIR/root --indirect
   DRV!OUT,...``: builds what is missing (substituting from caches where
   configured) and registers GC roots, which the builder deletes only once
   the layers are stored.
3. ``nix path-info --json --recursive OUTPUTS``: the whole closure's
   ``narSize`` and ``references`` in one call (Nix's closure sizes, ``-S``,
   cost O(n^2) and are not needed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nixspec.errors import PackageProblem, ProblemKind
from nixspec.spec import ImageSpec

RESOLVE_NIX = Path(__file__).parent / "nix" / "resolve.nix"
NIX_COMMAND = ("--extra-experimental-features", "nix-command")


@dataclass(frozen=True)
class Resolved:
    """A name that is a package: its derivation and the outputs the image holds."""

    name: str
    attr_path: str
    drv_path: str
    outputs: tuple[tuple[str, str], ...]  # (output name, store path), sorted

    @property
    def out_paths(self) -> tuple[str, ...]:
        return tuple(path for _, path in self.outputs)

    @property
    def installable(self) -> str:
        """``DRV!out,bin``: realise just these outputs of the derivation."""
        return f"{self.drv_path}!{','.join(name for name, _ in self.outputs)}"


def resolve_request(
    spec: ImageSpec,
    names: Sequence[str],
    *,
    allow_unfree: bool,
    explain: str | None = None,
    probe: bool = False,
) -> str:
    """The one JSON argument of ``resolve.nix``. ``explain`` forces one name
    without catching errors; ``probe`` only loads the package set."""
    return json.dumps(
        {
            "source": {
                "kind": str(spec.source.kind),
                "location": spec.source.location,
                "revision": spec.source.revision,
            },
            "system": spec.arch.nix_system,
            "allowUnfree": allow_unfree,
            "names": list(names),
            "explain": explain,
            "probe": probe,
        },
        sort_keys=True,
    )


def eval_argv(request: str) -> list[str]:
    return [
        "nix-instantiate",
        "--eval",
        "--strict",
        "--json",
        "--read-write-mode",
        str(RESOLVE_NIX),
        "--argstr",
        "request",
        request,
    ]


def realise_argv(resolved: Sequence[Resolved], root: Path) -> list[str]:
    return [
        "nix-store",
        "--realise",
        "--keep-going",
        "--add-root",
        str(root),
        "--indirect",
        *[r.installable for r in resolved],
    ]


def invalid_paths_argv(paths: Sequence[str]) -> list[str]:
    return ["nix-store", "--check-validity", "--print-invalid", *paths]


def path_info_argv(paths: Sequence[str]) -> list[str]:
    return ["nix", *NIX_COMMAND, "path-info", "--json", "--recursive", *paths]


def parse_resolution(stdout: str) -> tuple[list[Resolved], list[PackageProblem]]:
    """Split ``resolve.nix``'s answer into packages and problems."""
    entries: Any = json.loads(stdout)
    if not isinstance(entries, list):
        raise ValueError("resolve.nix did not answer a list")
    resolved: list[Resolved] = []
    problems: list[PackageProblem] = []
    for entry in entries:
        name = str(entry["name"])
        attr_path = str(entry.get("attrPath", ""))
        if "error" in entry:
            problems.append(
                PackageProblem(
                    name=name,
                    kind=ProblemKind(entry["error"]),
                    attr_path=attr_path,
                    candidates=tuple(str(c) for c in entry.get("candidates", [])),
                )
            )
            continue
        outputs: Mapping[str, str] = entry["outputs"]
        resolved.append(
            Resolved(
                name=name,
                attr_path=attr_path,
                drv_path=str(entry["drvPath"]),
                outputs=tuple(sorted((str(k), str(v)) for k, v in outputs.items())),
            )
        )
    return resolved, problems


def error_message(stderr: str) -> str:
    """Nix's own error line(s): from the first ``error:`` to the trace hint."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if start is None:
        return stderr.strip()[-500:]
    kept = [
        line
        for line in lines[start:]
        if line.strip() and not line.startswith("(use '--show-trace'")
    ]
    return " ".join(line.strip() for line in kept)[:500].removeprefix("error: ")
