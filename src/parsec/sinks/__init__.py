"""Out-of-band delivery: sinks, retries and the dead-letter queue.

::

    Message, Sink, SinkRegistry, SinkError   the contract      (base.py)
    EmailSink, SlackSink, WebhookSink        built-in sinks    (email.py, slack.py, webhook.py)
    RetryPolicy, RetryingSender              retries, DLQ push (retry.py)
    DLQ, DLQItem, MemoryDLQ                  dead-letter queue (dlq.py)
    SinkMetrics and implementations          metrics hooks     (metrics.py)

``parsec.sinks.config.build_sinks`` turns the TOML ``[sinks.<name>]`` tables into a
registry; ``parsec.config.load_options`` calls it, so ``Options.sinks`` holds a ready
:class:`SinkRegistry` (``None`` when nothing is configured) and ``Options.sink_retry`` /
``Options.sink_retry_overrides`` the policies a :class:`RetryingSender` takes.

The built-in sinks load when first named (``from parsec.sinks import EmailSink``):
their clients (aiosmtplib, httpx) stay out of ``import parsec``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from parsec.sinks.base import Message, Sink, SinkError, SinkRegistry, classify_error
from parsec.sinks.dlq import DLQ, DLQItem, MemoryDLQ
from parsec.sinks.metrics import NoopSinkMetrics, RecordingSinkMetrics, SinkMetrics
from parsec.sinks.retry import DeliveryOutcome, RetryingSender, RetryPolicy

if TYPE_CHECKING:
    from parsec.sinks.email import EmailRecipient, EmailSink
    from parsec.sinks.slack import SlackSink
    from parsec.sinks.webhook import WebhookRecipient, WebhookSink, sign, verify_signature

__all__ = [
    "DLQ",
    "DLQItem",
    "DeliveryOutcome",
    "EmailRecipient",
    "EmailSink",
    "MemoryDLQ",
    "Message",
    "NoopSinkMetrics",
    "RecordingSinkMetrics",
    "RetryPolicy",
    "RetryingSender",
    "Sink",
    "SinkError",
    "SinkMetrics",
    "SinkRegistry",
    "SlackSink",
    "WebhookRecipient",
    "WebhookSink",
    "classify_error",
    "sign",
    "verify_signature",
]

_LAZY: Final = {
    "EmailRecipient": "parsec.sinks.email",
    "EmailSink": "parsec.sinks.email",
    "SlackSink": "parsec.sinks.slack",
    "WebhookRecipient": "parsec.sinks.webhook",
    "WebhookSink": "parsec.sinks.webhook",
    "sign": "parsec.sinks.webhook",
    "verify_signature": "parsec.sinks.webhook",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
