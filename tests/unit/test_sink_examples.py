"""Smoke test: the out-of-band delivery examples run to completion with one command each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

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
