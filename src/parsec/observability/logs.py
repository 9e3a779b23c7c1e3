"""Logging setup for ``parsec serve``: ``[log] level`` and ``[log] format``.

``text``: one human line per record (time, level, logger, message), followed by the
record's structured fields as ``key=value``. ``json``: one JSON object per line::

    {"time":"2026-12-07T19:40:01.123Z","level":"info","logger":"parsec.access",
     "msg":"http_request","method":"GET","path":"/healthz","status":200,…}

The fields are ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``msg``, then whatever
the record carries as ``extra`` (the structured fields), then ``region`` when
``options.region`` is set and ``exc`` (the traceback, one JSON string) for a record
with an exception. uvicorn's loggers go through the same handler; its access log stays
off (:mod:`parsec.observability.access_log` writes one instead).

Call sites pass structured fields as ``extra={...}``; never a secret (tokens, keys,
passwords): nothing here redacts.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import msgspec

if TYPE_CHECKING:
    from parsec.options import Options

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "log_listening"]

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
"""Attributes every LogRecord has: anything else on a record came in ``extra``."""
QUIET: Final = ("httpx", "httpcore")
"""Loggers kept at WARNING whatever the level: httpx writes every outgoing URL at INFO
(a webhook's URL may hold a password or a token)."""
CHATTY: Final = ("alembic",)
"""Loggers that write a line per plugin at INFO: quieted above DEBUG."""
UVICORN: Final = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


_ENCODER: Final = msgspec.json.Encoder(enc_hook=str)
"""Several times faster than ``json.dumps``; anything it cannot encode becomes its
``str``."""


def extras(record: logging.LogRecord) -> dict[str, object]:
    """The structured fields of ``record`` (what it was given as ``extra``)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def rfc3339(created: float) -> str:
    """``created`` (epoch seconds) as RFC 3339 UTC with milliseconds."""
    whole = int(created)
    ms = int((created - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def __init__(self, region: str = "") -> None:
        super().__init__()
        self.region = region

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extras(record).items():
            out.setdefault(key, value)
        if self.region:
            out["region"] = self.region
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return _ENCODER.encode(out).decode()


class TextFormatter(logging.Formatter):
    """The classic line, then the record's structured fields as ``key=value``."""

    def __init__(self, region: str = "") -> None:
        super().__init__(TEXT_FORMAT)
        self.region = region

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = extras(record)
        if self.region:
            fields["region"] = self.region
        if not fields:
            return line
        return line + " " + " ".join(f"{k}={_text(v)}" for k, v in fields.items())


_HANDLER = "parsec"
"""The name of the handler :func:`configure_logging` installs."""


def _text(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever ``sys.stderr`` is when a record is emitted (a process
    that swaps it, as a test runner does, never leaves it writing to a closed file)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_logging(options: Options, stream: TextIO | None = None) -> None:
    """Route every logger (uvicorn's too) to one handler on ``stream`` (default: the
    current stderr) in ``options.log.format``, at ``options.log.level``. Replaces the
    handler an earlier call installed (other handlers on the root logger stay), so
    calling it again reconfigures."""
    level = options.log.level.upper()
    formatter: logging.Formatter = (
        JsonFormatter(options.region)
        if options.log.format == "json"
        else TextFormatter(options.region)
    )
    handler = _CurrentStderr() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in root.handlers[:]:
        if old.get_name() == _HANDLER:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in UVICORN:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    for quiet in QUIET:
        logging.getLogger(quiet).setLevel(logging.WARNING)
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)


def log_listening(options: Options, token_file: object, expires: str) -> None:
    """The banner of ``parsec serve`` as one ``listening`` INFO line (logger ``parsec``),
    for ``format = "json"``: where it listens and where the operator token is (never
    the token: ``--print-token`` prints nothing more in this format)."""
    where = f"{options.server.host}:{options.server.port}"
    fields: dict[str, object] = {
        "event": "listening",
        "url": f"http://{where}",
        "websocket": f"ws://{where}/connection/websocket",
        "server_api": bool(options.api.key) or options.api.insecure,
        "operator_token_expires": expires,
    }
    key = "operator_token_file" if isinstance(token_file, Path) else "operator_token_error"
    fields[key] = str(token_file)
    logging.getLogger("parsec").info("parsec listening on %s", fields["url"], extra=fields)
