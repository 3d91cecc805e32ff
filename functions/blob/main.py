"""Cloud Function (2nd gen) ``blob``: ``/v2/<name>/blobs/<digest>``.

Wiring only: the settings are read and checked once, at import; the logic is
in :mod:`registry.blobs`.
"""

from __future__ import annotations

import functions_framework
from flask import Request
from werkzeug.wrappers import Response

from registry.app import blob_handler
from registry.logs import configure_logging
from registry.settings import Settings

configure_logging()
_handle = blob_handler(Settings.from_env())


@functions_framework.http
def blob(request: Request) -> Response:
    return _handle(request)
