"""Cloud Logging structured JSON (`registry.logs`)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from types import MappingProxyType

import pytest

from registry.logs import LABELS, TRACE, CloudLoggingFormatter, configure_logging, trace_id

TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, "", id="none"),
        pytest.param(
            {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"},
            "105445aa7843bc8bf206b12000100000",
            id="cloud-trace-context",
        ),
        pytest.param(
            {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000"},
            "105445aa7843bc8bf206b12000100000",
            id="cloud-trace-without-span",
        ),
        pytest.param(
            {"traceparent": f"00-{TRACE_HEX}-00f067aa0ba902b7-01"}, TRACE_HEX, id="traceparent"
        ),
        pytest.param(
            {
                "X-Cloud-Trace-Context": "aaaa/1",
                "traceparent": f"00-{TRACE_HEX}-00f067aa0ba902b7-01",
            },
            "aaaa",
            id="google-header-first",
        ),
        pytest.param({"traceparent": "garbage"}, "", id="malformed-traceparent"),
        pytest.param({"traceparent": f"00-{TRACE_HEX}"}, "", id="short-traceparent"),
        pytest.param({"X-Cloud-Trace-Context": "x" * 200 + "/1"}, "x" * 64, id="bounded"),
        pytest.param({"traceparent": "00-" + "y" * 200 + "-span-01"}, "y" * 64, id="bounded-w3c"),
    ],
)
def test_trace_id(headers: dict[str, str], expected: str) -> None:
    assert trace_id(headers) == expected


def _record(message: str = "built %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("nixery.build", logging.WARNING, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.fixture
def context() -> Iterator[None]:
    """Leave TRACE and LABELS as they were."""
    trace_token = TRACE.set("")
    labels_token = LABELS.set(MappingProxyType({}))
    try:
        yield
    finally:
        TRACE.reset(trace_token)
        LABELS.reset(labels_token)


def test_plain_entry(context: None) -> None:
    entry = json.loads(CloudLoggingFormatter().format(_record("built %s", "hello")))
    assert entry == {"severity": "WARNING", "message": "built hello", "logger": "nixery.build"}


@pytest.mark.parametrize(
    ("project", "trace", "field"),
    [
        pytest.param("", "abc", "abc", id="no-project"),
        pytest.param("my-proj", "abc", "projects/my-proj/traces/abc", id="with-project"),
    ],
)
def test_trace_joins_the_entry_to_the_request(
    context: None, project: str, trace: str, field: str
) -> None:
    TRACE.set(trace)
    entry = json.loads(CloudLoggingFormatter(project).format(_record()))
    assert entry["logging.googleapis.com/trace"] == field


def test_labels_from_context_and_record_are_merged(context: None) -> None:
    LABELS.set(MappingProxyType({"build_id": "b1", "image": "hello"}))
    record = _record(labels={"image": "shell/hello", "layers": 3})
    entry = json.loads(CloudLoggingFormatter().format(record))
    assert entry["logging.googleapis.com/labels"] == {
        "build_id": "b1",
        "image": "shell/hello",
        "layers": "3",
    }
    assert dict(LABELS.get()) == {"build_id": "b1", "image": "hello"}  # not mutated


def test_no_labels_no_trace_fields(context: None) -> None:
    entry = json.loads(CloudLoggingFormatter("p").format(_record(labels="not-a-mapping")))
    assert "logging.googleapis.com/labels" not in entry
    assert "logging.googleapis.com/trace" not in entry


def test_exception_is_part_of_the_message(context: None) -> None:
    try:
        raise RuntimeError("nix exploded")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "build failed", (), sys.exc_info()
        )
    entry = json.loads(CloudLoggingFormatter().format(record))
    assert entry["severity"] == "ERROR"
    assert entry["message"].startswith("build failed\nTraceback")
    assert "RuntimeError: nix exploded" in entry["message"]


def test_one_line_per_entry_and_unicode_kept(context: None) -> None:
    line = CloudLoggingFormatter().format(_record("a\nb ✓"))
    assert "\n" not in line
    assert "✓" in line
    assert json.loads(line)["message"] == "a\nb ✓"


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers = handlers
        root.setLevel(level)


def test_configure_logging_is_idempotent_and_writes_json_to_stdout(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str], context: None
) -> None:
    configure_logging(logging.DEBUG)
    configure_logging(logging.DEBUG)
    assert len(root_logger.handlers) == 1
    assert isinstance(root_logger.handlers[0].formatter, CloudLoggingFormatter)
    assert root_logger.level == logging.DEBUG
    logging.getLogger("nixery.test").debug("hello %d", 42)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"severity": "DEBUG", "message": "hello 42", "logger": "nixery.test"}
    ]
