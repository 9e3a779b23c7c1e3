"""The answer of each command to each way a token can fail (token_checks' table)."""

from __future__ import annotations

import pytest

from parsec.engine.codes import ClientError, Disconnect
from parsec.engine.token_checks import (
    ON_CONNECT,
    ON_REFRESH,
    ON_SUB_REFRESH,
    ON_SUBSCRIBE,
    Refusals,
)


def _code(error: type[Exception] | Exception) -> int:
    value = error() if isinstance(error, type) else error
    assert isinstance(value, ClientError | Disconnect)
    return value.code


@pytest.mark.parametrize(
    ("refusals", "expired", "invalid", "not_theirs", "revoked", "lapsed", "reported"),
    [
        (ON_CONNECT, 109, 3500, 3500, 109, 110, True),
        (ON_REFRESH, 3005, 3500, 3500, 3005, 3005, False),
        (ON_SUBSCRIBE, 109, 103, 3500, 109, 109, True),
        (ON_SUB_REFRESH, 3006, 3500, 3500, 3006, 3006, False),
    ],
    ids=["connect", "refresh", "subscribe", "sub_refresh"],
)
def test_each_command_answers_each_failure_as_documented(
    refusals: Refusals,
    expired: int,
    invalid: int,
    not_theirs: int,
    revoked: int,
    lapsed: int,
    reported: bool,
) -> None:
    """1xx answers with an error reply (the connection stays open), 3xxx closes."""
    assert _code(refusals.expired) == expired
    assert _code(refusals.invalid("chat:x")) == invalid
    assert _code(refusals.not_theirs) == not_theirs
    assert _code(refusals.revoked) == revoked
    assert _code(refusals.lapsed) == lapsed
    assert refusals.report_invalid is reported


def test_an_invalid_subscription_token_is_denied_for_its_channel() -> None:
    """The 103 names the channel the client asked for, as before."""
    denied = ON_SUBSCRIBE.invalid("chat:x")
    assert isinstance(denied, ClientError)
    assert denied.message == "permission denied: subscribe to 'chat:x'"
