"""Descriptor envelopes: their shape, kinds, timestamps and JSON encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from parsec import descriptor

NEW_YEAR = 1767225600.0  # 2026-01-01T00:00:00Z


class Source:
    """Something with a manifest, as the facade is."""

    def manifest(self) -> dict[str, object]:
        return {"service": "parsec", "surfaces": ["cli", "twirp", "websocket"]}


def test_envelope_has_the_four_fields_in_order() -> None:
    """An envelope is format_version, kind, generated_at, payload; the payload as given."""
    payload = {"channel": "public:app.lobby"}

    document = descriptor.envelope("parsec.channel.deleted", payload, clock=lambda: NEW_YEAR)

    assert list(document) == ["format_version", "kind", "generated_at", "payload"]
    assert document == {
        "format_version": "1.0",
        "kind": "parsec.channel.deleted",
        "generated_at": "2026-01-01T00:00:00Z",
        "payload": payload,
    }


@pytest.mark.parametrize(
    "kind",
    [
        "parsec.manifest",
        "parsec.channels.list",
        "parsec.channel.open",
        "parsec.channel.credentials",
        "parsec.channel.get",
        "parsec.channel.deleted",
        "parsec.publish.ack",
        "parsec.token.refreshed",
        "parsec.token.mgmt",
        "parsec.token.revoked",
        "parsec.token.user_revoked",
        "parsec.keys.list",
        "parsec.key.generated",
        "parsec.key.promoted",
        "parsec.key.retired",
        "parsec.keys.reloaded",
        "parsec.keys.imported",
        "parsec.presence",
        "parsec.dlq.list",
        "parsec.dlq.count",
        "parsec.dlq.discarded",
        "parsec.dlq.replayed",
        "parsec.publish_or_sink",
        "parsec.login.oidc",
    ],
)
def test_every_documented_kind_is_accepted(kind: str) -> None:
    """Each kind of parsec-reference §5 and the issue makes an envelope."""
    assert descriptor.envelope(kind, {})["kind"] == kind
    assert kind in descriptor.KINDS


@pytest.mark.parametrize("kind", ["", "parsec.channel", "PARSEC.MANIFEST", "parsec.dlq"])
def test_an_unknown_kind_is_refused(kind: str) -> None:
    """An envelope of a kind this build does not emit is a ValueError naming it."""
    with pytest.raises(ValueError, match="unknown descriptor kind"):
        descriptor.envelope(kind, {})


def test_generated_at_defaults_to_now() -> None:
    """Without a clock, generated_at is the current time to the second."""
    before = datetime.now(UTC).replace(microsecond=0)

    stamp = descriptor.envelope("parsec.manifest", {})["generated_at"]

    after = datetime.now(UTC)
    assert before <= datetime.fromisoformat(stamp) <= after


def test_manifest_envelope_wraps_the_source_manifest() -> None:
    """manifest_envelope is a parsec.manifest envelope of source.manifest()."""
    document = descriptor.manifest_envelope(Source(), clock=lambda: NEW_YEAR)

    assert document["kind"] == "parsec.manifest"
    assert document["payload"] == Source().manifest()


def test_encode_is_compact_json_that_round_trips() -> None:
    """encode gives compact UTF-8 JSON that decodes back to the envelope."""
    document = descriptor.envelope("parsec.keys.reloaded", {"ok": True}, clock=lambda: NEW_YEAR)

    encoded = descriptor.encode(document)

    assert b" " not in encoded
    assert json.loads(encoded) == document


def test_encode_refuses_a_payload_that_is_not_json() -> None:
    """A payload holding a value JSON cannot represent is a TypeError, not a crash later."""
    document = descriptor.envelope("parsec.presence", {"subscribers": object()})

    with pytest.raises(TypeError, match="not JSON-encodable"):
        descriptor.encode(document)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (NEW_YEAR, "2026-01-01T00:00:00Z"),
        (NEW_YEAR + 0.999, "2026-01-01T00:00:00Z"),
        (0, "1970-01-01T00:00:00Z"),
        (datetime(2026, 1, 1, 12, 30, 5, 123456, tzinfo=UTC), "2026-01-01T12:30:05Z"),
        (
            datetime(2026, 1, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-01T12:30:05Z",
        ),
    ],
    ids=["float", "fraction-dropped", "epoch", "aware-utc", "other-offset"],
)
def test_rfc3339_is_utc_to_the_second(moment: float | datetime, expected: str) -> None:
    """rfc3339 renders unix seconds or aware datetimes in UTC with a Z, no fraction."""
    assert descriptor.rfc3339(moment) == expected
