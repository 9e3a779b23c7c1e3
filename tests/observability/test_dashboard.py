"""deploy/grafana/parsec.json: every metric its queries name is exported by a live
server (a histogram's ``_bucket``, ``_sum`` and ``_count`` series included)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from metrics_scrape import CHAT

from parsec import Options
from parsec.testing import serve_for_tests

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "parsec.json"
METRIC = re.compile(r"\b(parsec_[a-z0-9_]+)")


def dashboard_metrics() -> set[str]:
    document = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in document["panels"] for target in panel["targets"]]
    assert exprs
    return {name for expr in exprs for name in METRIC.findall(expr)}


def exported(text: str) -> set[str]:
    """Metric families the exposition declares (``# TYPE``), with histogram series."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "counter":
                names.add(f"{name}_total")
    return names


async def test_every_dashboard_metric_is_exported() -> None:
    async with (
        serve_for_tests(Options(namespaces=[CHAT])) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        text = (await http.get("/metrics")).text

    missing = dashboard_metrics() - exported(text)
    assert not missing, sorted(missing)
    assert len(dashboard_metrics()) >= 15
