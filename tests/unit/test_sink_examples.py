"""Smoke test: the out-of-band delivery examples run to completion with one command each."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from background import free_port

EXAMPLES: Final = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT: Final = 60.0


@pytest.mark.parametrize(
    ("script", "lines"),
    [
        (
            "notify-or-email/main.py",
            [
                "[app]      notice 1: published live",
                "[browser]  tab closed",
                "[smtp]     email to ana@example.com: 'Your order was delivered'",
                "[app]      notice 2: emailed",
                "done: live while listening, email after the tab closed",
            ],
        ),
        (
            "scenarios/download-notify/main.py",
            [
                "[browser]  progress 60%",
                "[browser]  tab closed",
                "[job]      finished: queued for email",
                "[app]      dead letters: 0",
                "done: the download notice went by email",
            ],
        ),
    ],
)
def test_example_runs_and_tells_its_story(script: str, lines: list[str]) -> None:
    """The example exits 0 and prints each step of its story, in order."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.splitlines()
    positions = [printed.index(line) for line in lines]
    assert positions == sorted(positions), printed


class RefusingMailbox:
    """An SMTP server's handler that refuses every recipient for good (550)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return "550 5.1.1 no such mailbox here"


@pytest.fixture
def refusing_smtp() -> Iterator[int]:
    """A real SMTP server on a free loopback port that refuses every recipient; its port."""
    controller = Controller(RefusingMailbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def test_notify_or_email_tells_a_dead_lettered_email_from_a_sent_one(refusing_smtp: int) -> None:
    """When the SMTP server refuses the email, the example says the notice was
    dead-lettered (with the server's reply) and exits 1, and never claims it was emailed."""
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "notify-or-email/main.py"),
            "--smtp",
            f"127.0.0.1:{refusing_smtp}",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    printed = done.stdout.splitlines()
    assert "[app]      notice 1: published live" in printed
    second = next(line for line in printed if line.startswith("[app]      notice 2: "))
    assert second.startswith("[app]      notice 2: NOT emailed, dead-lettered as "), printed
    assert " after 1 attempt: " in second
    assert "550 5.1.1 no such mailbox here" in second
    assert not any("emailed" in line and "NOT" not in line for line in printed), printed
    assert printed[-1] == "failed: the email was not delivered but dead-lettered"
