"""The benchmark smoke pass: every workload against every server with tiny parameters.

It runs ``python -m bench smoke`` once (a real run: servers and load generator as
separate processes on loopback) and checks what a person gets: the output files exist
and parse, and every server produced numbers. No timing or ratio is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import redis

pytestmark = pytest.mark.timeout(300)

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("parsec", "socketio", "broadcaster", "limit")
WORKLOADS = ("fanout", "many-channels", "idle", "connect", "api-publish", "redis-fanout")
CLUSTER_SERVERS = ("parsec", "socketio")
"""The servers redis-fanout runs as two workers sharing Redis."""
CHARTS = ("deliveries.png", "latency.png", "fanout-steps.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output directory of one ``python -m bench smoke`` run."""
    out = tmp_path_factory.mktemp("bench-smoke")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    return out


@pytest.fixture(scope="module")
def results(smoke: Path) -> dict[str, Any]:
    """The run's ``results.json``, parsed."""
    parsed: dict[str, Any] = json.loads((smoke / "results.json").read_text())
    return parsed


def test_smoke_writes_results_report_and_charts(smoke: Path) -> None:
    """The run leaves results.json, report.md and three PNG charts."""
    assert (smoke / "results.json").is_file()
    assert (smoke / "report.md").read_text().startswith("# Benchmark results")
    for chart in CHARTS:
        assert (smoke / chart).read_bytes().startswith(PNG_SIGNATURE), chart


def test_results_describe_the_run(results: dict[str, Any]) -> None:
    """results.json says it was a smoke pass, on which machine, with which servers."""
    meta = results["meta"]
    assert meta["smoke"] is True
    assert meta["servers"] == list(SERVERS)
    assert meta["machine"]["nproc"] >= 1
    assert meta["command"] == "python -m bench smoke --out " + meta["command"].split()[-1]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_server_produced_numbers(results: dict[str, Any], workload: str) -> None:
    """Each server that the workload applies to ran it and reported numeric metrics."""
    outcomes = results["workloads"][workload]["servers"]
    assert set(outcomes) == set(SERVERS)
    for server, outcome in outcomes.items():
        if outcome["status"] == "n/a":
            continue
        assert outcome["status"] == "ok", (server, outcome)
        numbers = [v for v in outcome["metrics"].values() if isinstance(v, int | float)]
        assert numbers, (server, outcome["metrics"])


def test_every_server_ran_at_least_four_workloads(results: dict[str, Any]) -> None:
    """No server is left out: each has numbers for at least four workloads."""
    for server in SERVERS:
        ok = [w for w in WORKLOADS if results["workloads"][w]["servers"][server]["status"] == "ok"]
        assert len(ok) >= 4, (server, ok)


def test_parsec_runs_every_workload(results: dict[str, Any]) -> None:
    """Parsec, the subject of the benchmark, has numbers in every available workload."""
    for workload in WORKLOADS:
        assert results["workloads"][workload]["servers"]["parsec"]["status"] == "ok", workload


@pytest.mark.parametrize("server", CLUSTER_SERVERS)
def test_redis_fanout_splits_subscribers_between_two_workers(
    results: dict[str, Any], server: str
) -> None:
    """Both workers hold subscribers, together all of them; one holds the publisher."""
    outcome = results["workloads"]["redis-fanout"]["servers"][server]
    assert outcome["status"] == "ok", outcome
    workers = outcome["details"]["workers"]
    assert len(workers) == 2, workers
    assert all(w["subscribers"] > 0 for w in workers), workers
    assert sum(w["subscribers"] for w in workers) == outcome["details"]["subscribers"]
    assert [w["publisher"] for w in workers].count(True) == 1, workers
    assert outcome["cluster"]["workers"] == 2


@pytest.mark.parametrize("server", CLUSTER_SERVERS)
def test_redis_fanout_leaves_no_keys_behind(results: dict[str, Any], server: str) -> None:
    """Each run used a key prefix of its own and nothing under it is left in Redis."""
    cluster = results["workloads"]["redis-fanout"]["servers"][server]["cluster"]
    assert cluster["key_prefix"].startswith("bench-")
    client = redis.Redis.from_url(cluster["redis_url"])
    try:
        assert list(client.scan_iter(match=cluster["key_prefix"] + "*")) == []
    finally:
        client.close()


def test_redis_fanout_prefixes_differ(results: dict[str, Any]) -> None:
    """No two runs share a key prefix."""
    outcomes = results["workloads"]["redis-fanout"]["servers"]
    prefixes = {outcomes[s]["cluster"]["key_prefix"] for s in CLUSTER_SERVERS}
    assert len(prefixes) == len(CLUSTER_SERVERS)


def test_report_compares_parsec_with_every_peer(smoke: Path) -> None:
    """report.md has the results table, a ratio column per peer and the issue's goals."""
    report = (smoke / "report.md").read_text()
    assert "| metric | parsec | socketio | broadcaster | limit |" in report
    assert "| metric | vs socketio | vs broadcaster | vs limit |" in report
    assert "## Issue 5 goals" in report
    assert "| redis-fanout: max sustained deliveries/s |" in report
    assert "redis-fanout / parsec: subscribers per worker: " in report
