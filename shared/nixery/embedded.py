"""The embedded registry: both functions in one local WSGI server.

Each function is loaded exactly as functions-framework loads it on Cloud
Functions (``create_app(target, source)`` on its ``main.py``), and a tiny
dispatcher sends ``/v2/<name>/blobs/...`` to the blob function and everything
else to the manifest function, which is what the load balancer's URL map
does in the cloud. Same handlers, same code paths; only the adapters differ
(filesystem blobs, SQLite metadata, local builder processes).

The server is gunicorn with threaded workers (the same server
functions-framework uses in its containers): a pull waiting for a build holds
a thread, not a process, and the TLS handshake some clients try first on a
plain-HTTP port is answered with a 400 and a close instead of a hang.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import functions
from registry.routes import Kind, parse

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FUNCTIONS_DIR = Path(functions.__file__).parent


def create_app() -> WSGIApp:
    import functions_framework

    create = functions_framework.create_app
    manifest_app = create("manifest", str(FUNCTIONS_DIR / "manifest" / "main.py"))  # type: ignore[no-untyped-call]
    blob_app = create("blob", str(FUNCTIONS_DIR / "blob" / "main.py"))  # type: ignore[no-untyped-call]

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = parse(environ.get("PATH_INFO", "")).kind
        app = blob_app if kind is Kind.BLOB else manifest_app
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return dispatch


def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the embedded registry until SIGTERM/SIGINT."""
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 0)  # a pull may wait minutes for its build
            self.cfg.set("graceful_timeout", 5)
            self.cfg.set("keepalive", 30)
            self.cfg.set("accesslog", None)
            self.cfg.set("errorlog", "-")
            self.cfg.set("loglevel", "warning")

        def load(self) -> WSGIApp:
            return create_app()

    _Server().run()
