"""Logs as Cloud Logging structured JSON, one object per line on stdout.

Cloud Run and Cloud Functions turn each stdout line that is a JSON object
into a log entry: ``severity`` and ``message`` become the entry's severity and
text, ``logging.googleapis.com/trace`` joins it to the request's trace and
``logging.googleapis.com/labels`` become labels. The request's trace id (from
``X-Cloud-Trace-Context`` or ``traceparent``) travels with the build request,
so a pull's request logs and the build's logs share one trace. Locally the
same lines are just readable JSON.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

TRACE: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="")
LABELS: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "labels", default=MappingProxyType({})
)


class _Headers(Protocol):
    def get(self, key: str, default: str) -> str: ...


def add_labels(**labels: str) -> None:
    """Label every later log line of this context (a request, or the builder
    process): ``image`` and ``build_id`` join a pull's lines to its build's."""
    LABELS.set(MappingProxyType({**LABELS.get(), **labels}))


def trace_id(headers: _Headers) -> str:
    """The trace id of a request, from Google's header or W3C traceparent."""
    cloud = headers.get("X-Cloud-Trace-Context", "")
    if cloud:
        return cloud.split("/", 1)[0][:64]
    parent = headers.get("traceparent", "")
    parts = parent.split("-")
    return parts[1][:64] if len(parts) >= 3 else ""


class CloudLoggingFormatter(logging.Formatter):
    def __init__(self, project: str = "") -> None:
        super().__init__()
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info:
            entry["message"] = f"{entry['message']}\n{self.formatException(record.exc_info)}"
        trace = TRACE.get()
        if trace:
            entry["logging.googleapis.com/trace"] = (
                f"projects/{self._project}/traces/{trace}" if self._project else trace
            )
        labels = dict(LABELS.get())
        extra = getattr(record, "labels", None)
        if isinstance(extra, Mapping):
            labels.update({str(k): str(v) for k, v in extra.items()})
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stdout for the whole process (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, CloudLoggingFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(os.environ.get("GOOGLE_CLOUD_PROJECT", "")))
    root.handlers = [handler]
    root.setLevel(level)
