"""Runs workloads against servers, one fresh server process per (workload, server),
with the load generator as a separate process, and collects the results.

A failure of one pair (server did not start, load generator failed or timed out) is
recorded for that pair with its reason and the run goes on; no number is invented. A
pair measured while other processes held the CPU is measured again (up to
``attempts`` times in all) and the least disturbed measurement is kept, with a note.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from bench.cluster import ClusterError, ClusterRun, cluster_run
from bench.loadgen.pool import raise_nofile_limit
from bench.loadgen.spec import Result, Spec
from bench.machine import QUIET_PCT, CpuLedger, wait_for_quiet
from bench.plan import Workload
from bench.servers import REPO_ROOT, SERVERS, RunningServer, ServerError, secrets

__all__ = ["run_pair", "run_workloads"]

Progress = Callable[[str], None]

BUSY_MACHINE_PCT = 15.0
"""Above this CPU % used by other processes, a pair's result carries a note saying so."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_workloads(
    workloads: list[Workload],
    servers: list[str],
    *,
    smoke: bool,
    quiet_wait_s: float = 0.0,
    attempts: int = 1,
    progress: Progress = _say,
) -> dict[str, Any]:
    """Every workload against every server it applies to; the ``workloads`` part of
    ``results.json``: name -> description, params, and per server a status
    (``ok`` with metrics, ``error`` with the reason, ``n/a`` or ``not available``).

    Before each pair it waits up to ``quiet_wait_s`` for the machine to be quiet
    (other processes, such as a test suite, would share the cores)."""
    measure = _Measure(quiet_wait_s, attempts, progress)
    raise_nofile_limit()  # the servers inherit it
    results: dict[str, Any] = {}
    for workload in workloads:
        params = workload.params_for(smoke)
        entry: dict[str, Any] = {
            "description": workload.description,
            "available": workload.available,
            "params": params,
            "servers": {},
        }
        results[workload.name] = entry
        for server in servers:
            if not workload.available:
                outcome: dict[str, Any] = {"status": "not available", "reason": workload.reason}
            elif workload.servers is not None and server not in workload.servers:
                outcome = {"status": "n/a", "reason": f"{server} does not apply to this workload"}
            else:
                outcome = measure(workload, server, params)
            entry["servers"][server] = outcome
        if not workload.available:
            progress(f"{workload.name}: {workload.reason}")
    return results


class _Measure:
    """One pair measured at most ``attempts`` times, while other processes disturb it."""

    def __init__(self, quiet_wait_s: float, attempts: int, progress: Progress) -> None:
        self.quiet_wait_s = quiet_wait_s
        self.attempts = max(1, attempts)
        self.progress = progress

    def __call__(self, workload: Workload, server: str, params: dict[str, Any]) -> dict[str, Any]:
        kept: dict[str, Any] | None = None
        for attempt in range(1, self.attempts + 1):
            outcome = self._once(workload, server, params)
            outcome["attempt"] = attempt
            if kept is None or outcome["others_cpu_pct"] < kept["others_cpu_pct"]:
                kept = outcome
            if outcome["status"] != "ok" or outcome["others_cpu_pct"] <= BUSY_MACHINE_PCT:
                break
            if attempt < self.attempts:
                self.progress(
                    f"{workload.name} / {server}: other processes used "
                    f"{outcome['others_cpu_pct']}% CPU; measuring again"
                )
        assert kept is not None
        if kept["others_cpu_pct"] > BUSY_MACHINE_PCT and "notes" in kept:
            kept["notes"].append(
                f"other processes used {kept['others_cpu_pct']}% user CPU (100 = one core) "
                f"during this measurement (the least disturbed of {self.attempts})"
            )
        self.progress(f"{workload.name} / {server}: {_summary(kept)}")
        return kept

    def _once(self, workload: Workload, server: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.quiet_wait_s > 0:
            busy = wait_for_quiet(self.quiet_wait_s)
            if busy >= QUIET_PCT:
                self.progress(f"the machine is still busy ({busy}% CPU): measuring anyway")
        self.progress(f"{workload.name} / {server} ...")
        before = CpuLedger.now()
        outcome = run_pair(workload, server, params)
        after = CpuLedger.now()
        outcome["seconds"] = round(after.wall_s - before.wall_s, 1)
        outcome["others_cpu_pct"] = after.others_pct_since(before)
        return outcome


def run_pair(workload: Workload, server: str, params: dict[str, Any]) -> dict[str, Any]:
    """One workload against one fresh server process (or, for a ``[cluster]``
    workload, a fresh set of workers on a fresh Redis key prefix, cleaned up after)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{server}-") as tmp:
        try:
            if workload.cluster is None:
                return _run_server(workload, server, params, Path(tmp), None)
            with cluster_run(workload.cluster) as cluster:
                outcome = _run_server(workload, server, params, Path(tmp), cluster)
            outcome["cluster"] = cluster.describe()
            if cluster.cleanup_error is not None and "notes" in outcome:
                outcome["notes"].append(cluster.cleanup_error)
            return outcome
        except (ServerError, ClusterError) as exc:
            return {"status": "error", "error": str(exc)}


def _run_server(
    workload: Workload,
    server: str,
    params: dict[str, Any],
    workdir: Path,
    cluster: ClusterRun | None,
) -> dict[str, Any]:
    with RunningServer(SERVERS[server], workdir, secrets(), cluster) as running:
        spec = Spec(workload=workload.name, target=running.target, params=params)
        outcome = _run_loadgen(spec, workdir, workload.timeout_seconds)
        if outcome["status"] != "ok":
            outcome["server_log_tail"] = running.log_tail()
        return outcome


def _run_loadgen(spec: Spec, workdir: Path, timeout: float) -> dict[str, Any]:
    spec_path, result_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_bytes(msgspec.json.encode(spec))
    command = [sys.executable, "-m", "bench.loadgen", str(spec_path), str(result_path)]
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": f"the load generator did not finish in {timeout}s"}
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return {"status": "error", "error": reason[0], "loadgen_stderr": done.stderr[-2000:]}
    result = msgspec.json.decode(result_path.read_bytes(), type=Result)
    return {"status": "ok", **msgspec.to_builtins(result)}


def _summary(outcome: dict[str, Any]) -> str:
    if outcome["status"] != "ok":
        return f"{outcome['status']}: {outcome.get('error', outcome.get('reason', ''))}"
    shown = ", ".join(f"{k}={v}" for k, v in outcome["metrics"].items())
    return f"{shown} ({outcome['seconds']}s)"
