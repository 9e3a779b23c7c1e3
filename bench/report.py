"""The human-readable side of a run: ``report.md`` (results, Parsec / peer ratios, the
issue's goals) and PNG charts, all built from ``results.json`` alone.

A ratio is an *advantage*: Parsec / peer for numbers where higher is better
(deliveries/s), peer / Parsec where lower is better (latency, memory, CPU), so above
1.0 always means Parsec did better. A missing number gives no ratio, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

__all__ = ["GOALS", "METRICS", "advantage", "metric", "write_charts", "write_markdown"]

PARSEC = "parsec"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    workload: str
    key: str
    label: str
    higher_is_better: bool


METRICS = (
    MetricSpec(
        "fanout", "max_sustained_deliveries_per_s", "fanout: max sustained deliveries/s", True
    ),
    MetricSpec("fanout", "peak_deliveries_per_s", "fanout: peak deliveries/s (any latency)", True),
    MetricSpec("fanout", "ref_p50_ms", "fanout @ 50k/s: p50 ms", False),
    MetricSpec("fanout", "ref_p99_ms", "fanout @ 50k/s: p99 ms", False),
    MetricSpec("fanout", "ref_p999_ms", "fanout @ 50k/s: p99.9 ms", False),
    MetricSpec("many-channels", "deliveries_per_s", "many-channels: deliveries/s", True),
    MetricSpec("many-channels", "p99_ms", "many-channels: p99 ms", False),
    MetricSpec("idle", "rss_per_connection_kb", "idle: RSS KB per connection", False),
    MetricSpec("idle", "server_cpu_pct", "idle: server CPU %", False),
    MetricSpec("connect", "connections_per_s", "connect: connections/s (JWT)", True),
    MetricSpec("connect", "connect_p99_ms", "connect: p99 ms", False),
    MetricSpec("api-publish", "publish_per_s", "api-publish: publishes/s", True),
    MetricSpec("api-publish", "batch_publishes_per_s", "api-publish: batch publishes/s", True),
    MetricSpec(
        "redis-fanout",
        "max_sustained_deliveries_per_s",
        "redis-fanout: max sustained deliveries/s",
        True,
    ),
    MetricSpec(
        "redis-fanout",
        "peak_deliveries_per_s",
        "redis-fanout: peak deliveries/s (any latency)",
        True,
    ),
    MetricSpec("redis-fanout", "ref_p50_ms", "redis-fanout @ 50k/s: p50 ms", False),
    MetricSpec("redis-fanout", "ref_p99_ms", "redis-fanout @ 50k/s: p99 ms", False),
    MetricSpec("redis-fanout", "ref_p999_ms", "redis-fanout @ 50k/s: p99.9 ms", False),
)


@dataclass(frozen=True, slots=True)
class Goal:
    """One of issue 5's targets: Parsec's ``workload.key`` against a bound, or against a
    peer's number times ``factor``."""

    text: str
    workload: str
    key: str
    bound: float
    peer: str | None = None
    higher_is_better: bool = True


GOALS = (
    Goal(
        "fanout >= 8x python-socketio", "fanout", "max_sustained_deliveries_per_s", 8.0, "socketio"
    ),
    Goal(
        "fanout >= 1.0x the limit server", "fanout", "max_sustained_deliveries_per_s", 1.0, "limit"
    ),
    Goal(
        "p99 < 25 ms at 50,000 deliveries/s", "fanout", "ref_p99_ms", 25.0, higher_is_better=False
    ),
    Goal(
        "idle < 15 KB per connection", "idle", "rss_per_connection_kb", 15.0, higher_is_better=False
    ),
    Goal("connect >= 3,000 connections/s", "connect", "connections_per_s", 3000.0),
)


def metric(results: dict[str, Any], workload: str, server: str, key: str) -> float | None:
    """A server's headline number, or None when it has none (missing, failed, n/a)."""
    outcome = results["workloads"].get(workload, {}).get("servers", {}).get(server)
    if not outcome or outcome.get("status") != "ok":
        return None
    value = outcome["metrics"].get(key)
    return None if value is None else float(value)


def advantage(parsec: float | None, peer: float | None, higher_is_better: bool) -> float | None:
    """How many times better Parsec is than the peer (> 1: better); None without both
    numbers or with a zero to divide by."""
    if parsec is None or peer is None:
        return None
    top, bottom = (parsec, peer) if higher_is_better else (peer, parsec)
    return None if bottom == 0 else top / bottom


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _servers(results: dict[str, Any]) -> list[str]:
    return list(results["meta"]["servers"])


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _goal_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for goal in GOALS:
        mine = metric(results, goal.workload, PARSEC, goal.key)
        if goal.peer is not None:
            theirs = metric(results, goal.workload, goal.peer, goal.key)
            ratio = advantage(mine, theirs, True)
            measured = _ratio(ratio)
            met = None if ratio is None else ratio >= goal.bound
            if theirs == 0 and mine:  # the peer sustained no step at all
                measured, met = f"{_fmt(mine)} vs 0", True
        else:
            measured = _fmt(mine)
            met = (
                None
                if mine is None
                else (mine >= goal.bound if goal.higher_is_better else mine < goal.bound)
            )
        rows.append([goal.text, measured, {True: "yes", False: "**no**", None: "—"}[met]])
    return rows


def write_markdown(results: dict[str, Any], path: Path) -> None:
    """``report.md``: machine, command, results, ratios, goals, notes."""
    meta = results["meta"]
    servers = _servers(results)
    peers = [s for s in servers if s != PARSEC]
    hw = meta["machine"]
    lines = [
        f"# Benchmark results, {meta['started']}" + (" (smoke pass)" if meta["smoke"] else ""),
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {hw['nproc']} cores, {hw['cpu_model']}, {hw['ram_gib']} GiB RAM, "
        f"Linux {hw['kernel']}, Python {hw['python']}",
        f"- Parsec revision: {hw.get('revision') or 'unknown'}",
        "- load generator and servers on the same machine; one fresh server process per "
        "workload and server",
        "",
        "## Results",
        "",
    ]
    rows = [
        [m.label] + [_fmt(metric(results, m.workload, s, m.key)) for s in servers]
        for m in METRICS
        if m.workload in results["workloads"]
    ]
    lines += _table(["metric", *servers], rows)
    if PARSEC in servers and peers:
        lines += ["", "## Parsec advantage (> 1.00x: Parsec better)", ""]
        ratio_rows = []
        for m in METRICS:
            if m.workload not in results["workloads"]:
                continue
            mine = metric(results, m.workload, PARSEC, m.key)
            ratio_rows.append(
                [m.label]
                + [
                    _ratio(
                        advantage(mine, metric(results, m.workload, p, m.key), m.higher_is_better)
                    )
                    for p in peers
                ]
            )
        lines += _table(["metric", *(f"vs {p}" for p in peers)], ratio_rows)
    if PARSEC in servers:
        lines += ["", "## Issue 5 goals", ""]
        lines += _table(["goal", "measured", "met"], _goal_rows(results))
    lines += ["", "## Notes", ""]
    lines += _notes(results)
    path.write_text("\n".join(lines) + "\n")


def _notes(results: dict[str, Any]) -> list[str]:
    notes = []
    for name, entry in results["workloads"].items():
        for server, outcome in entry["servers"].items():
            status = outcome["status"]
            if status == "ok":
                notes += [f"- {name} / {server}: {note}" for note in outcome.get("notes", [])]
            elif status == "error":
                notes.append(f"- {name} / {server}: **error**: {outcome['error']}")
        if not entry["available"]:
            reasons = [o.get("reason", "") for o in entry["servers"].values()]
            notes.append(f"- {name}: {reasons[0] if reasons else 'not available'}")
    return notes or ["- none"]


def write_charts(results: dict[str, Any], out: Path) -> list[Path]:
    """``deliveries.png``, ``latency.png`` and ``fanout-steps.png``; the files written."""
    written = [_deliveries_chart(results, out / "deliveries.png")]
    written.append(_latency_chart(results, out / "latency.png"))
    written.append(_steps_chart(results, out / "fanout-steps.png"))
    return written


def _bars(ax: Any, groups: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, labels=[_fmt(v) if v else "—" for v in values], fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8)


def _deliveries_chart(results: dict[str, Any], path: Path) -> Path:
    servers = _servers(results)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = {
        "fanout (max sustained, p99 < 50 ms)": [
            metric(results, "fanout", s, "max_sustained_deliveries_per_s") or 0.0 for s in servers
        ],
        "fanout (peak, any latency)": [
            metric(results, "fanout", s, "peak_deliveries_per_s") or 0.0 for s in servers
        ],
        "many-channels": [
            metric(results, "many-channels", s, "deliveries_per_s") or 0.0 for s in servers
        ],
        "redis-fanout (max sustained, 2 workers)": [
            metric(results, "redis-fanout", s, "max_sustained_deliveries_per_s") or 0.0
            for s in servers
        ],
    }
    _bars(ax, servers, series)
    ax.set_ylabel("deliveries/s")
    ax.set_title("Deliveries per second, per server")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency_chart(results: dict[str, Any], path: Path) -> Path:
    servers = _servers(results)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = {
        label: [metric(results, "fanout", s, key) or 0.0 for s in servers]
        for label, key in (("p50", "ref_p50_ms"), ("p99", "ref_p99_ms"), ("p99.9", "ref_p999_ms"))
    }
    _bars(ax, servers, series)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylabel("ms (publish -> receive)")
    ax.set_title("fanout latency at the reference rate (50,000 deliveries/s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _steps_chart(results: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for server, outcome in results["workloads"].get("fanout", {}).get("servers", {}).items():
        if outcome.get("status") != "ok":
            continue
        steps = sorted(outcome["details"]["steps"], key=lambda s: s["target_per_s"])
        ax.plot(
            [s["achieved_per_s"] for s in steps],
            [s["p99_ms"] or 0.0 for s in steps],
            marker="o",
            label=server,
        )
    ax.axhline(50.0, color="grey", linestyle="--", linewidth=1, label="50 ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("achieved deliveries/s")
    ax.set_ylabel("p99 ms")
    ax.set_title("fanout: p99 latency per step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
