"""Closure graphs from ``nix path-info --json --recursive``: pure parsing.

Nix up to 2.18 prints a list of ``{"path", "narSize", "references", ...}``;
newer versions print an object keyed by store path. Both become the mapping
the layering takes: store path -> :class:`layering.PathInfo`, with
self-references dropped (every store path lists itself when it contains its
own path) and references sorted, so the graph's iteration order never leaks
into results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from layering import PathInfo


def _info(path: str, entry: Mapping[str, Any]) -> PathInfo:
    if entry.get("valid") is False:
        raise ValueError(f"{path} is not valid in the store")
    refs = sorted({str(r) for r in entry.get("references", []) if str(r) != path})
    return PathInfo(nar_size=int(entry["narSize"]), references=tuple(refs))


def parse_path_info(text: str) -> dict[str, PathInfo]:
    data: Any = json.loads(text)
    if isinstance(data, list):
        graph = {str(e["path"]): _info(str(e["path"]), e) for e in data}
    elif isinstance(data, dict):
        graph = {str(path): _info(str(path), e) for path, e in data.items()}
    else:
        raise ValueError("unexpected nix path-info output")
    missing = sorted({r for info in graph.values() for r in info.references} - graph.keys())
    if missing:
        raise ValueError(f"closure is not closed: {missing[:3]} referenced but absent")
    return dict(sorted(graph.items()))


def closure_size(graph: Mapping[str, PathInfo]) -> int:
    return sum(info.nar_size for info in graph.values())
