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


def in_harness(code: str) -> object:
    """What ``code`` prints as JSON, run in a Python process that imports the harness
    (``bench`` here is this test directory; the harness lives at the repository root)."""
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


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


def test_list_shows_every_workload() -> None:
    """`bench list` names each workload, all of them available, and lists the servers."""
    done = run("bench", "list")
    assert done.returncode == 0
    for name in ("fanout", "many-channels", "idle", "connect", "api-publish", "redis-fanout"):
        assert f"{name}: " in done.stdout
    assert "not available" not in done.stdout
    assert "servers: parsec, socketio, broadcaster, limit" in done.stdout


def test_redis_fanout_runs_the_fanout_load() -> None:
    """redis-fanout takes fanout's parameters (full and smoke) and runs over two workers."""
    loaded = in_harness(
        "from bench.plan import load_workload\n"
        "f, r = load_workload('fanout'), load_workload('redis-fanout')\n"
        "print(json.dumps({'same': [r.params_for(s) == f.params_for(s) for s in (0, 1)],"
        " 'workers': r.cluster.workers, 'servers': r.servers}))"
    )
    assert loaded == {"same": [True, True], "workers": 2, "servers": ["parsec", "socketio"]}


def test_redis_fanout_fails_loudly_without_redis(tmp_path: Path) -> None:
    """With nothing listening at the Redis URL, each server's pair is an error naming
    Redis (not skipped, no server started), in the results, the report and on stderr."""
    url = f"redis://127.0.0.1:{unused_port()}/0"
    done = run(
        "bench", "run", "redis-fanout", "--smoke", "--redis-url", url, "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads((tmp_path / "results.json").read_text())["workloads"]["redis-fanout"]
    for server in ("parsec", "socketio"):
        assert outcomes["servers"][server]["status"] == "error"
        assert f"Redis at {url} is not reachable" in outcomes["servers"][server]["error"]
    assert {outcomes["servers"][s]["status"] for s in ("broadcaster", "limit")} == {"n/a"}
    assert f"redis-fanout / parsec: error: Redis at {url} is not reachable" in done.stderr
    assert "redis-fanout / socketio: **error**: Redis at" in (tmp_path / "report.md").read_text()


def test_unavailable_workload_is_reported_without_numbers() -> None:
    """A workload marked `available = false` starts no server: every server gets "not
    available" with the workload's reason."""
    outcomes = in_harness(
        "from bench.plan import Workload\n"
        "from bench.runner import run_workloads\n"
        "w = Workload(name='later', description='d', available=False, reason='not yet: why')\n"
        "r = run_workloads([w], ['parsec', 'limit'], smoke=True, progress=lambda line: None)\n"
        "print(json.dumps(r['later']['servers']))"
    )
    assert outcomes == {
        s: {"status": "not available", "reason": "not yet: why"} for s in ("parsec", "limit")
    }


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
