"""parsec.sinks.base: Message, SinkError, the classifier and the registry."""

from __future__ import annotations

import pytest

from parsec.errors import ParsecError
from parsec.sinks import (
    EmailSink,
    Message,
    Sink,
    SinkError,
    SinkRegistry,
    SlackSink,
    WebhookSink,
    classify_error,
)


def slack(name: str) -> SlackSink:
    return SlackSink(name, webhook_url="https://hooks.example.test/T/B/secret")


# -- Message --------------------------------------------------------------------------------


def test_message_round_trips_through_json() -> None:
    """from_json(to_json(m)) == m, and to_json carries every field."""
    message = Message("Hi", "Body", {"k": "v"})

    assert message.to_json() == {"subject": "Hi", "body": "Body", "metadata": {"k": "v"}}
    assert Message.from_json(message.to_json()) == message


def test_message_from_json_fills_missing_fields() -> None:
    """Absent subject, body or metadata default to empty; null metadata is empty."""
    assert Message.from_json({"body": "x", "metadata": None}) == Message("", "x", {})


@pytest.mark.parametrize(
    "data",
    [
        None,
        "text",
        ["subject"],
        {"subject": 1},
        {"body": None},
        {"metadata": {"k": 1}},
        {"metadata": ["k"]},
        {"subject": "s", "to": "x"},
    ],
)
def test_message_from_json_rejects_bad_shapes(data: object) -> None:
    """Anything but an object of string fields is PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        Message.from_json(data)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


# -- SinkError and classification ----------------------------------------------------------


def test_sink_error_carries_its_classification() -> None:
    """A SinkError keeps message, transient flag and retry_after, and shows them in repr."""
    error = SinkError("HTTP 429", transient=True, retry_after=3.0)

    assert (str(error), error.transient, error.retry_after) == ("HTTP 429", True, 3.0)
    assert repr(error) == "SinkError('HTTP 429', transient, retry_after=3.0)"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ConnectionResetError(), True),
        (BrokenPipeError(), True),
        (TimeoutError(), True),
        (OSError("network unreachable"), True),
        (ValueError("bad"), False),
        (KeyError("x"), False),
        (ParsecError("PARSEC_INVALID_ARGUMENT", "bad recipient"), False),
    ],
)
def test_classifier_marks_network_errors_transient(error: Exception, transient: bool) -> None:
    """Network errors and timeouts are transient; everything else is terminal."""
    assert classify_error(error).transient is transient


def test_classifier_keeps_sink_errors_as_they_are() -> None:
    """A SinkError passes through unchanged."""
    error = SinkError("x", transient=False)

    assert classify_error(error) is error


def test_classifier_messages_name_the_exception_type() -> None:
    """A foreign exception's message names its type (and its text when it has one)."""
    assert classify_error(TimeoutError()).message == "TimeoutError"
    assert classify_error(ValueError("boom")).message == "ValueError: boom"
    assert classify_error(ParsecError("PARSEC_INTERNAL", "oops")).message == "oops"


# -- SinkRegistry ---------------------------------------------------------------------------


def test_registry_finds_sinks_by_name() -> None:
    """get returns the registered sink; names are sorted; membership and len work."""
    a, b = slack("b-team"), slack("a-team")
    registry = SinkRegistry([a, b])

    assert registry.get("b-team") is a
    assert registry.names() == ["a-team", "b-team"]
    assert "a-team" in registry
    assert "c-team" not in registry
    assert len(registry) == 2
    assert list(registry) == [b, a]
    assert repr(registry) == "SinkRegistry(['a-team', 'b-team'])"


def test_registry_unknown_name_is_sink_config_invalid() -> None:
    """Asking for an unregistered sink raises PARSEC_SINK_CONFIG_INVALID naming it."""
    with pytest.raises(ParsecError) as caught:
        SinkRegistry().get("mail")

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"
    assert "'mail'" in caught.value.message


def test_registry_refuses_duplicate_names() -> None:
    """Registering a second sink under a taken name raises PARSEC_SINK_CONFIG_INVALID."""
    registry = SinkRegistry([slack("team")])

    with pytest.raises(ParsecError) as caught:
        registry.add(slack("team"))

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x" * 65, "é"])
def test_sink_names_are_restricted(name: str) -> None:
    """Names outside 1-64 of [A-Za-z0-9_.-] are PARSEC_SINK_CONFIG_INVALID."""
    with pytest.raises(ParsecError) as caught:
        slack(name)

    assert caught.value.code == "PARSEC_SINK_CONFIG_INVALID"


def test_builtin_sinks_satisfy_the_protocol() -> None:
    """Email, Slack and webhook sinks are Sinks."""
    sinks = [
        EmailSink("mail", host="127.0.0.1", sender="a@example.test"),
        slack("team"),
        WebhookSink("hook", url="http://127.0.0.1:9/"),
    ]

    assert all(isinstance(sink, Sink) for sink in sinks)
