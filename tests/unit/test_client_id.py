"""Client ids: random version-4 UUIDs in canonical form, as clients expect."""

from __future__ import annotations

import uuid

from parsec.engine.session import new_client_id


def test_client_id_is_a_canonical_uuid4() -> None:
    for _ in range(1000):
        text = new_client_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_client_ids_do_not_repeat() -> None:
    assert len({new_client_id() for _ in range(10_000)}) == 10_000
