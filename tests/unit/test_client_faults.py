"""ClientFaults: every problem counted, INFO lines within the connection's and the
node's budgets, and the first line after a quiet spell says how many were not logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from parsec.engine import faults
from parsec.engine.faults import ClientFaults


@dataclass
class Connection:
    fault_lines: int = faults.LINES_PER_CONNECTION


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def levels(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.levelno for r in caplog.records if r.name == "parsec.clients"]


def test_every_reason_starts_at_zero() -> None:
    """Metrics can export every reason from the start."""
    assert ClientFaults().counts == dict.fromkeys(faults.REASONS, 0)


def test_a_connection_logs_its_budget_then_debug(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """One connection's problems: LINES_PER_CONNECTION at INFO, the rest at DEBUG."""
    caplog.set_level(logging.DEBUG, logger="parsec.clients")
    client_faults, connection = ClientFaults(clock=clock), Connection()
    for _ in range(10):
        client_faults.report(faults.INVALID_TOKEN, connection, "bad token %s", "x")

    assert client_faults.counts[faults.INVALID_TOKEN] == 10
    n = faults.LINES_PER_CONNECTION
    assert levels(caplog) == [logging.INFO] * n + [logging.DEBUG] * (10 - n)


def test_the_node_budget_refills_slowly_and_reports_what_it_held_back(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Past NODE_BURST lines only DEBUG; once the bucket refills, the next INFO line
    says how many problems were logged at DEBUG only meanwhile."""
    caplog.set_level(logging.INFO, logger="parsec.clients")
    client_faults = ClientFaults(clock=clock)
    for _ in range(faults.NODE_BURST + 5):
        client_faults.report(faults.MALFORMED_COMMAND, Connection(), "malformed")
    assert levels(caplog) == [logging.INFO] * faults.NODE_BURST

    clock.now += 1 / faults.NODE_LINES_PER_SECOND
    client_faults.report(faults.MALFORMED_COMMAND, None, "malformed")

    assert len(levels(caplog)) == faults.NODE_BURST + 1
    assert caplog.records[-1].getMessage() == (
        "malformed (5 more client problems since the last line were logged at DEBUG only)"
    )
    assert client_faults.counts[faults.MALFORMED_COMMAND] == faults.NODE_BURST + 6


def test_the_bucket_never_holds_more_than_the_burst(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A long quiet spell does not bank more than NODE_BURST lines."""
    caplog.set_level(logging.INFO, logger="parsec.clients")
    client_faults = ClientFaults(clock=clock)
    clock.now += 10**6
    for _ in range(faults.NODE_BURST * 2):
        client_faults.report(faults.FRAME_TOO_BIG, None, "too big")
    assert levels(caplog) == [logging.INFO] * faults.NODE_BURST
