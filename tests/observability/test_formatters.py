"""The two log formats, as a record with structured fields comes out of each."""

from __future__ import annotations

import json
import logging
import sys

from parsec.observability.logs import JsonFormatter, TextFormatter


def _record(exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    record = logging.LogRecord("parsec.access", logging.INFO, __file__, 1, "http_request", (), info)
    record.__dict__.update(method="GET", path="/healthz", status=200, note="two words")
    return record


def test_json_is_one_object_per_line_with_the_fields_and_the_region() -> None:
    line = JsonFormatter("eu-west-1").format(_record(exc=True))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "info"
    assert parsed["logger"] == "parsec.access"
    assert parsed["msg"] == "http_request"
    assert (parsed["method"], parsed["path"], parsed["status"]) == ("GET", "/healthz", 200)
    assert parsed["region"] == "eu-west-1"
    assert "ValueError: boom" in parsed["exc"]


def test_text_appends_the_fields_as_key_value() -> None:
    line = TextFormatter("eu-west-1").format(_record())
    assert "INFO parsec.access: http_request method=GET path=/healthz status=200" in line
    assert 'note="two words" region=eu-west-1' in line
