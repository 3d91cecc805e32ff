"""Cloud Function (2nd gen) ``manifest``: ``/v2/`` and ``/v2/<name>/manifests/<ref>``.

Wiring only: the settings are read and checked once, at import; the logic is
in :mod:`registry.manifests`.
"""

from __future__ import annotations

import functions_framework
from flask import Request
from werkzeug.wrappers import Response

from registry.app import manifest_handler
from registry.http import framework_not_found
from registry.logs import configure_logging
from registry.settings import Settings

configure_logging()
_handle = manifest_handler(Settings.from_env())
# Paths the framework's catch-all route cannot match get a spec error too.
functions_framework.errorhandler(404)(framework_not_found)


@functions_framework.http
def manifest(request: Request) -> Response:
    return _handle(request)
