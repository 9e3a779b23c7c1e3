"""Bad input to the benchmark commands gets a clear message and exit status 2, a dead
server a clear failure; none of them a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_USAGE = 2


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spec(workload: str, params: dict[str, object], port: int = 9) -> dict[str, object]:
    return {
        "workload": workload,
        "target": {
            "adapter": "centrifuge",
            "host": "127.0.0.1",
            "port": port,
            "pid": 1,
            "hmac_secret": "s",
            "publish_path": "/api/publish",
        },
        "params": params,
    }


def test_unknown_workload_is_refused() -> None:
    """`bench run nosuch` exits 2 and lists the known workloads."""
    done = run("bench", "run", "nosuch")
    assert done.returncode == EXIT_USAGE
    assert "unknown workload 'nosuch'" in done.stderr
    assert "fanout" in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_server_is_refused() -> None:
    """`bench run fanout --server nosuch` exits 2 and lists the known servers."""
    done = run("bench", "run", "fanout", "--server", "nosuch")
    assert done.returncode == EXIT_USAGE
    assert "unknown server 'nosuch'" in done.stderr
    assert "parsec" in done.stderr


def test_negative_quiet_wait_is_refused() -> None:
    """`--quiet-wait -1` exits 2 with a message saying what is allowed."""
    done = run("bench", "run", "connect", "--quiet-wait", "-1")
    assert done.returncode == EXIT_USAGE
    assert "--quiet-wait must be 0 or more seconds" in done.stderr


def test_zero_attempts_is_refused() -> None:
    """`--attempts 0` exits 2 with a message saying what is allowed."""
    done = run("bench", "run", "connect", "--attempts", "0")
    assert done.returncode == EXIT_USAGE
    assert "--attempts must be 1 or more" in done.stderr


def test_list_shows_every_workload_and_the_placeholder() -> None:
    """`bench list` names each workload, marks redis-fanout not available, lists servers."""
    done = run("bench", "list")
    assert done.returncode == 0
    for name in ("fanout", "many-channels", "idle", "connect", "api-publish"):
        assert f"{name}: " in done.stdout
    assert "redis-fanout:" in done.stdout
    assert "not available yet" in done.stdout
    assert "servers: parsec, socketio, broadcaster, limit" in done.stdout


def test_placeholder_workload_runs_without_numbers(tmp_path: Path) -> None:
    """`bench run redis-fanout` starts no server and records "not available" for each."""
    done = run("bench", "run", "redis-fanout", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    outcomes = results["workloads"]["redis-fanout"]["servers"]
    assert {o["status"] for o in outcomes.values()} == {"not available"}


def test_loadgen_refuses_unknown_parameter(tmp_path: Path) -> None:
    """A workload parameter the workload does not know is refused, naming it."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec("fanout", {"subscribrs": 10})))
    done = run("bench.loadgen", str(path), str(tmp_path / "result.json"))
    assert done.returncode == EXIT_USAGE
    assert "bad params for fanout" in done.stderr
    assert "subscribrs" in done.stderr
    assert not (tmp_path / "result.json").exists()


def test_loadgen_refuses_malformed_spec(tmp_path: Path) -> None:
    """A spec that is not the Spec shape is refused, naming the field."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"workload": "fanout", "params": {}}))
    done = run("bench.loadgen", str(path), str(tmp_path / "result.json"))
    assert done.returncode == EXIT_USAGE
    assert "bad spec" in done.stderr
    assert "target" in done.stderr


def test_loadgen_refuses_unknown_workload(tmp_path: Path) -> None:
    """A spec naming a workload the load generator does not have is refused."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec("nosuch", {})))
    done = run("bench.loadgen", str(path), str(tmp_path / "result.json"))
    assert done.returncode == EXIT_USAGE
    assert "unknown workload 'nosuch'" in done.stderr


def test_loadgen_without_arguments_prints_usage() -> None:
    """Running the load generator without its two files prints the usage line."""
    done = run("bench.loadgen")
    assert done.returncode == EXIT_USAGE
    assert "usage: python -m bench.loadgen SPEC.json RESULT.json" in done.stderr


def test_loadgen_reports_an_unreachable_server(tmp_path: Path) -> None:
    """Against a port nobody listens on, the load generator fails with one clear line."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec("api-publish", {"seconds": 0.1}, port=unused_port())))
    done = run("bench.loadgen", str(path), str(tmp_path / "result.json"))
    assert done.returncode == 1
    assert "api-publish failed" in done.stderr
    assert "Connect" in done.stderr  # ConnectionRefusedError, or picows' connect error
    assert "Traceback" not in done.stderr
