"""JSON Lines interface: `python -m layering` reads requests on stdin, answers on stdout.

One request per line::

    {"nodes": {"<path>": {"narSize": int, "references": ["<path>", ...]}},
     "roots": ["<path>", ...], "budget": int, "popularity": {"<name-version>": int}}

(`popularity` is optional, `budget` defaults to `DEFAULT_BUDGET`), one answer per line::

    {"layers": [["<path>", ...], ...], "seconds": float}

with the layers in manifest order and `seconds` the algorithm's own time (without
start-up and parsing). A request that cannot be layered gets `{"error": "<message>"}`
and the next line is read as usual. Blank lines are skipped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from layering import DEFAULT_BUDGET, PathInfo, split_layers


def _parse_nodes(raw: Any) -> dict[str, PathInfo]:
    if not isinstance(raw, dict):
        raise ValueError('"nodes" must be an object of store path -> {narSize, references}')
    nodes: dict[str, PathInfo] = {}
    for path, node in raw.items():
        if not isinstance(node, dict):
            raise ValueError(f"node {path!r} must be an object")
        size = node.get("narSize", 0)
        refs = node.get("references", [])
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError(f"narSize of {path!r} must be an integer")
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"references of {path!r} must be a list of store paths")
        nodes[path] = PathInfo(nar_size=size, references=tuple(refs))
    return nodes


def _parse_popularity(raw: Any) -> Mapping[str, int] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in raw.values()
    ):
        raise ValueError('"popularity" must be an object of name-version -> integer')
    return raw


def answer(line: str) -> dict[str, Any]:
    """The answer object to one request line (an `error` object on bad input)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("a request must be a JSON object")
        nodes = _parse_nodes(request.get("nodes"))
        roots = request.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise ValueError('"roots" must be a list of store paths')
        budget = request.get("budget", DEFAULT_BUDGET)
        popularity = _parse_popularity(request.get("popularity"))
        start = time.perf_counter()
        layers = split_layers(nodes, roots, budget, popularity)
        seconds = time.perf_counter() - start
    except ValueError as err:  # json.JSONDecodeError is a ValueError too
        return {"error": str(err)}
    return {"layers": layers, "seconds": seconds}


def serve(lines: Iterable[str]) -> Iterator[str]:
    """One JSON answer line (without newline) per non-blank request line."""
    for line in lines:
        if line.strip():
            yield json.dumps(answer(line), separators=(",", ":"))


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    for out in serve(stdin):
        stdout.write(out + "\n")
        stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
