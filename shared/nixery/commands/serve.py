"""``nixery serve``: the embedded registry on this machine."""

from __future__ import annotations

import argparse
import logging

from nixery.commands.common import EXIT_OK, load_settings

log = logging.getLogger("nixery")

HELP = "run the embedded registry"
DESCRIPTION = """Run the registry on this machine: both functions in one local server, blobs
on disk, metadata in SQLite, builds as local builder processes. Logs are JSON
lines on stdout (the same shape as in the cloud)."""
EXAMPLES = """examples:
  NIXERY_PKGS_PATH=./my-packages nixery serve --port 8080
  docker pull 127.0.0.1:8080/shell/git
  nixery serve --host 0.0.0.0 --workers 4     # listen on every interface
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default $PORT or 8080)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--threads", type=int, default=32, help="threads per process (default 32)")


def run(args: argparse.Namespace) -> int:
    from registry.logs import configure_logging

    configure_logging()  # servers log JSON lines, as the functions do in the cloud
    settings = load_settings()
    from nixery.embedded import serve

    port = args.port or settings.port
    log.info(
        "serving on http://%s:%d (source: %s %s, storage: %s)",
        args.host,
        port,
        settings.source.kind,
        settings.source.location,
        settings.storage_path,
    )
    serve(args.host, port, args.workers, args.threads)
    return EXIT_OK
