"""Traces: a real OTLP/HTTP receiver gets the spans of traced requests, continuing
the caller's ``traceparent``; without an endpoint nothing of OpenTelemetry loads."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from otlp_receiver import ReceivedSpan, running_receiver

from parsec import Parsec
from parsec.config import ConfigError
from parsec.options import ObservabilityOptions, Options
from parsec.testing import serve_for_tests

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def _named(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [span for span in spans if span.name == name]
    assert found, f"no span {name!r} in {[span.name for span in spans]}"
    return found[0]


async def test_spans_of_a_traced_request_reach_the_collector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "parsec.access")
    with running_receiver() as receiver:
        options = Options(
            region="eu-west-1",
            observability=ObservabilityOptions(otlp_endpoint=receiver.url),
        )
        async with serve_for_tests(options) as server:
            node_id = server.parsec.node.id
            mgmt = server.parsec.issue_mgmt("ops").token
            async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
                published = await http.post(
                    "/api/publish",
                    json={"channel": "news", "data": {"n": 1}},
                    headers={"X-API-Key": server.api_key, "traceparent": TRACEPARENT},
                )
                listed = await http.post(
                    "/twirp/parsec.ParsecService/ListChannels",
                    json={},
                    headers={
                        "Authorization": f"Bearer {mgmt}",
                        "traceparent": f"00-{OTHER_TRACE}-{PARENT_ID}-01",
                    },
                )
            assert published.status_code == 200, published.text
            assert "error" not in published.json(), published.text
            assert listed.status_code == 200, listed.text
        spans = receiver.spans()  # closing the server flushed them
    request = _named(spans, "POST /api/publish")
    assert request.trace_id == TRACE_ID
    assert request.parent_span_id == PARENT_ID
    api = _named(spans, "centrifugo.api/publish")
    publish = _named(spans, "broker.publish")
    assert (api.trace_id, api.parent_span_id) == (TRACE_ID, request.span_id)
    assert (publish.trace_id, publish.parent_span_id) == (TRACE_ID, api.span_id)
    rpc = _named(spans, "parsec.ParsecService/ListChannels")
    assert rpc.trace_id == OTHER_TRACE
    assert _named(spans, "token.issue").attributes["parsec.token_type"] == "management"
    assert request.resource["service.name"] == "parsec"
    assert request.resource["parsec.node_id"] == node_id
    assert request.resource["cloud.region"] == "eu-west-1"
    lines = [r for r in caplog.records if r.name == "parsec.access"]
    line = next(r for r in lines if getattr(r, "path", "") == "/api/publish")
    assert getattr(line, "trace_id", None) == TRACE_ID


def test_without_an_endpoint_nothing_of_opentelemetry_loads(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from parsec import Parsec
        from parsec.observability import tracing
        from parsec.options import AuthOptions, Options
        from pathlib import Path
        parsec = Parsec(Options(auth=AuthOptions(state_dir=Path(sys.argv[1]))))
        parsec.asgi_app()
        assert parsec.tracing is tracing.NOOP
        # FastAPI itself imports opentelemetry-api when it is installed: Parsec loads
        # neither the SDK nor the exporter, nor its own OpenTelemetry module
        heavy = ("opentelemetry.sdk", "opentelemetry.exporter", "parsec.observability.otel")
        loaded = sorted(m for m in sys.modules if m.startswith(heavy))
        assert not loaded, loaded
        """
    )
    argv = [sys.executable, "-c", code, str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_an_endpoint_without_opentelemetry_installed_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "parsec.observability.otel", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    options = Options(observability=ObservabilityOptions(otlp_endpoint="http://127.0.0.1:4318"))
    with pytest.raises(ConfigError) as raised:
        Parsec(options)
    assert raised.value.key == "observability.otlp_endpoint"
    assert "parsec-realtime[otel]" in str(raised.value)
