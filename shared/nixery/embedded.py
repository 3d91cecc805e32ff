"""The embedded registry: both functions in one local WSGI server.

Each function is loaded exactly as functions-framework loads it on Cloud
Functions (``create_app(target, source)`` on its ``main.py``), and a tiny
dispatcher sends ``/v2/<name>/blobs/...`` to the blob function and everything
else to the manifest function, which is what the load balancer's URL map
does in the cloud. Same handlers, same code paths; only the adapters differ
(filesystem blobs, SQLite metadata, local builder processes).

Registry requests take a shorter way to the same functions: the dispatcher
hands the function a request made from the WSGI environment itself and
calls the function functions-framework registered (``inspect.unwrap`` of its
view), skipping Flask's routing, contexts and response hooks, which cost
more than the handlers on a warm manifest GET. What functions-framework
adds around a function is kept (the request body is read before a
non-streamed answer); anything that is not a registry route (``/``,
``/robots.txt``, ...) still goes through the Flask app.

The server is gunicorn with threaded workers (the same server
functions-framework uses in its containers): a pull waiting for a build holds
a thread, not a process, and the TLS handshake some clients try first on a
plain-HTTP port is answered with a 400 and a close instead of a hang.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

import functions
from ocimodel.errors import ErrorCode, RegistryError
from registry.http import API_VERSION_HEADER, error_response
from registry.routes import Kind, parse

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FUNCTIONS_DIR = Path(functions.__file__).parent


def create_app() -> WSGIApp:
    import flask
    import functions_framework

    create = functions_framework.create_app
    manifest_app = create("manifest", str(FUNCTIONS_DIR / "manifest" / "main.py"))  # type: ignore[no-untyped-call]
    blob_app = create("blob", str(FUNCTIONS_DIR / "blob" / "main.py"))  # type: ignore[no-untyped-call]
    manifest_function = _user_function(manifest_app)
    blob_function = _user_function(blob_app)

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = parse(environ.get("PATH_INFO", "")).kind
        if kind is Kind.UNKNOWN:
            result: Iterable[bytes] = manifest_app(environ, start_response)
            return result
        function = blob_function if kind is Kind.BLOB else manifest_function
        try:
            request = flask.Request(environ)
            response = function(request)
            if not response.is_streamed:
                request.get_data()  # what functions-framework does before answering
        except Exception:  # the handlers answer their own errors; this is a last resort
            log.exception("unhandled error serving %s", environ.get("PATH_INFO", "")[:200])
            response = error_response(
                RegistryError(ErrorCode.UNKNOWN, "internal error; see the registry's logs")
            )
            response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        return response(environ, start_response)

    return dispatch


def _user_function(app: Any) -> Callable[[Any], Response]:
    """The function functions-framework serves at ``/<path>`` (under its wrappers)."""
    function: Callable[[Any], Response] = inspect.unwrap(app.view_functions["run"])
    return function


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
