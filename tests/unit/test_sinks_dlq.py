"""parsec.sinks.dlq: MemoryDLQ's cap and the DLQItem JSON form (the rest is conformance)."""

from __future__ import annotations

import re

import pytest

from parsec.errors import ParsecError
from parsec.sinks import DLQItem, MemoryDLQ, Message

MESSAGE = Message("s", "b")


async def test_memory_ids_are_sixteen_hex_digits() -> None:
    """MemoryDLQ ids are 16 lowercase hex digits."""
    id = await MemoryDLQ().push("mail", None, MESSAGE, attempts=1, last_error="x", at=1.0)

    assert re.fullmatch(r"[0-9a-f]{16}", id)


async def test_memory_cap_drops_the_oldest_items_of_that_sink() -> None:
    """Past max_per_sink, the sink's oldest item goes; other sinks keep theirs."""
    dlq = MemoryDLQ(max_per_sink=2)
    other = await dlq.push("hook", None, MESSAGE, attempts=1, last_error="h", at=0.0)
    ids = [
        await dlq.push("mail", None, MESSAGE, attempts=1, last_error=str(n), at=float(n))
        for n in range(3)
    ]

    assert [item.id for item in await dlq.items("mail")] == [ids[2], ids[1]]
    assert await dlq.get(ids[0]) is None
    assert await dlq.get(other) is not None
    assert await dlq.count("") == 3


def test_memory_cap_must_be_positive() -> None:
    """A cap below one is a ValueError."""
    with pytest.raises(ValueError, match="at least 1"):
        MemoryDLQ(max_per_sink=0)


async def test_closed_memory_dlq_stays_readable() -> None:
    """aclose releases nothing and can be called twice; items remain."""
    dlq = MemoryDLQ()
    id = await dlq.push("mail", None, MESSAGE, attempts=1, last_error="x", at=1.0)

    await dlq.aclose()
    await dlq.aclose()

    assert await dlq.get(id) is not None


def test_item_json_carries_every_field() -> None:
    """to_json is a plain JSON object with every field."""
    item = DLQItem(
        "abc", "mail", 12.5, {"address": "a@b.test"}, Message("s", "b", {"k": "v"}), 2, "e"
    )

    assert item.to_json() == {
        "id": "abc",
        "sink": "mail",
        "at": 12.5,
        "recipient": {"address": "a@b.test"},
        "message": {"subject": "s", "body": "b", "metadata": {"k": "v"}},
        "attempts": 2,
        "last_error": "e",
    }


@pytest.mark.parametrize(
    "document",
    [
        {"at": 1.0, "attempts": 1, "message": {}},
        {"sink": "mail", "at": "yesterday", "attempts": 1, "message": {}},
        {"sink": "mail", "at": True, "attempts": 1, "message": {}},
        {"sink": "mail", "at": 1.0, "attempts": 1.5, "message": {}},
        {"sink": "mail", "at": 1.0, "attempts": 1, "message": {}, "last_error": 3},
        {"sink": "mail", "at": 1.0, "attempts": 1, "message": "text"},
    ],
)
def test_malformed_item_json_is_invalid_argument(document: dict[str, object]) -> None:
    """A stored document of the wrong shape raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        DLQItem.from_json("id-1", document)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"
