"""``parsec serve`` with metrics options: a real process, as an operator meets it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cli_runs import Proc, assert_one_line_error
from metrics_scrape import parse, total

from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")


def test_a_busy_metrics_addr_is_one_clear_error(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        addr = f"127.0.0.1:{busy.getsockname()[1]}"
        proc = spawn(
            "serve",
            "--addr",
            f"127.0.0.1:{free_port()}",
            cwd=tmp_path,
            env={"PARSEC_METRICS_ADDR": addr},
        )
        code, stderr = proc.finish(timeout=30)

    assert code == 2, stderr
    assert_one_line_error(
        stderr, f"cannot listen on {addr}", "already in use", "[observability] metrics_addr"
    )


def test_serve_answers_metrics_behind_its_bearer(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """The bearer from the environment guards /metrics; the token is in no output."""
    port = free_port()
    secret = "serve-scrape-token-0123456789"
    proc = spawn(
        "serve",
        "--addr",
        f"127.0.0.1:{port}",
        "--log-level",
        "debug",
        cwd=tmp_path,
        env={"PARSEC_METRICS_BEARER_TOKEN": secret, "PARSEC_REGION": "eu-north"},
    )
    proc.wait_for("err", "parsec listening on")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
        refused = http.get("/metrics")
        answered = http.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    proc.stop()
    _, stderr = proc.finish()
    written = "".join(proc.seen) + stderr + "".join(_rest(proc, "out"))

    assert refused.status_code == 401
    assert answered.status_code == 200
    samples = parse(answered.text)
    assert total(samples, "parsec_node_info", {"region": "eu-north"}) == 1
    assert total(samples, "parsec_connections", {"transport": "websocket"}) == 0
    assert secret not in written


def _rest(proc: Proc, stream: str) -> list[str]:
    """What ``stream`` holds that ``wait_for`` has not read (the process has exited)."""
    lines: list[str] = []
    while (line := proc.lines[stream].get(timeout=30)) is not None:
        lines.append(line)
    return lines
