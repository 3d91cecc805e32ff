"""HTTP plumbing shared by both functions: responses, errors, the guard.

Handlers return werkzeug responses (functions-framework hands them a Flask
request, which is a werkzeug request) and raise :class:`RegistryError` for
anything a client did wrong; :func:`guarded` renders those in the spec's
envelope, turns any other exception into a logged 500 ``UNKNOWN`` (never a
traceback to the client), and adds the headers every answer carries.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Protocol

from werkzeug.wrappers import Request, Response

from ocimodel.errors import ErrorCode, RegistryError, render
from registry.logs import LABELS, TRACE, trace_id

log = logging.getLogger(__name__)

API_VERSION_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")
READ_METHODS = ("GET", "HEAD")

Handler = Callable[[Request], Response]


def error_response(error: RegistryError) -> Response:
    status, headers, body = render(error)
    return Response(body, status=status, headers=headers)


def json_response(value: object, status: int = 200) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Response(
        body,
        status=status,
        headers={"Content-Type": "application/json", "Content-Length": str(len(body))},
    )


def require_read(request: Request) -> None:
    if request.method not in READ_METHODS:
        raise RegistryError(
            ErrorCode.UNSUPPORTED,
            f"{request.method} is not supported: this registry builds images on demand "
            "and is read-only",
            headers={"Allow": ", ".join(READ_METHODS)},
        )


def count_param(value: str) -> int | None:
    """A query parameter that counts things (``?n=``): ASCII digits only, at
    most nine of them; None otherwise. ``str.isdigit`` also accepts ``²`` and
    ``٣`` (``int`` refuses the first), and ``int`` refuses more than 4300
    digits: both were 500s."""
    if 0 < len(value) <= 9 and value.isascii() and value.isdigit():
        return int(value)
    return None


def not_found(path: str) -> RegistryError:
    return RegistryError(
        ErrorCode.NAME_UNKNOWN,
        "no such endpoint: the registry API lives under /v2/",
        detail={"path": path[:200]},
    )


def framework_not_found(_error: Exception) -> Response:
    """functions-framework's own 404, in the spec's envelope.

    The framework routes every path to the function through one catch-all
    rule, except paths that rule cannot match (one holding a newline, sent
    as ``%0a``) and ``/robots.txt`` / ``/favicon.ico``; those got an HTML
    page. Each function's ``main.py`` registers this as the framework's 404
    handler (``functions_framework.errorhandler(404)``).
    """
    from flask import request

    response = error_response(not_found(request.path))
    response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
    return response


class Gate(Protocol):
    """Admits a request or raises a RegistryError (:class:`registry.auth.BasicAuth`)."""

    def check(self, request: Request) -> None: ...


def guarded(handler: Handler, gate: Gate | None = None) -> Handler:
    """Wrap a handler: the gate (authentication) first, spec errors rendered,
    internal errors logged as 500, the API version header on every answer,
    the trace id in the logs."""

    def run(request: Request) -> Response:
        token = TRACE.set(trace_id(request.headers))
        # Threads serve request after request: labels must not leak to the next.
        labels = LABELS.set({})
        try:
            if gate is not None:
                gate.check(request)
            response = handler(request)
        except RegistryError as error:
            response = error_response(error)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path[:200])
            response = error_response(
                RegistryError(ErrorCode.UNKNOWN, "internal error; see the registry's logs")
            )
        finally:
            TRACE.reset(token)
            LABELS.reset(labels)
        response.headers[API_VERSION_HEADER[0]] = API_VERSION_HEADER[1]
        return response

    return run
