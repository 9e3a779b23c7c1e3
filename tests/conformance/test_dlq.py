"""DLQ conformance: the guarantees stated in ``parsec.sinks.dlq``."""

from __future__ import annotations

import asyncio

import pytest

from parsec.errors import ParsecError
from parsec.sinks.base import Message
from parsec.sinks.dlq import DLQ, DLQItem

MESSAGE = Message("Download ready", "report.pdf is ready", {"job": "42"})


async def push(dlq: DLQ, sink: str, n: int, *, at: float = 1_000.0) -> str:
    """Push item number ``n`` of ``sink`` (its recipient and error carry ``n``)."""
    return await dlq.push(
        sink,
        {"address": f"user{n}@example.test"},
        MESSAGE,
        attempts=n,
        last_error=f"error {n}",
        at=at,
    )


async def test_pushed_item_reads_back_whole(dlq: DLQ) -> None:
    """get returns every field as pushed, under the id push returned."""
    id = await dlq.push(
        "mail",
        {"address": "a@example.test"},
        MESSAGE,
        attempts=5,
        last_error="SMTP 451 try later",
        at=1_700_000_000.5,
    )

    assert await dlq.get(id) == DLQItem(
        id, "mail", 1_700_000_000.5, {"address": "a@example.test"}, MESSAGE, 5, "SMTP 451 try later"
    )


async def test_recipients_of_any_json_shape_are_kept(dlq: DLQ) -> None:
    """A null recipient (Slack) and an empty object (webhook default URL) survive."""
    slack = await dlq.push("team", None, MESSAGE, attempts=1, last_error="x", at=1.0)
    hook = await dlq.push("hook", {}, Message(), attempts=1, last_error="x", at=2.0)

    slack_item, hook_item = await dlq.get(slack), await dlq.get(hook)

    assert slack_item is not None
    assert slack_item.recipient is None
    assert hook_item is not None
    assert (hook_item.recipient, hook_item.message) == ({}, Message())


async def test_ids_are_unique_across_sinks(dlq: DLQ) -> None:
    """Every push gets a new id, also in different sinks."""
    ids = [await push(dlq, sink, n) for n in range(5) for sink in ("mail", "hook")]

    assert len(set(ids)) == len(ids)


async def test_items_of_one_sink_are_newest_first(dlq: DLQ) -> None:
    """items(sink) lists that sink's items in reverse push order."""
    ids = [await push(dlq, "mail", n, at=1_000.0 + n) for n in range(4)]
    await push(dlq, "hook", 99)

    listed = await dlq.items("mail")

    assert [item.id for item in listed] == list(reversed(ids))
    assert all(item.sink == "mail" for item in listed)


async def test_items_of_all_sinks_are_newest_first(dlq: DLQ) -> None:
    """items("") merges every sink, newest first by time."""
    ids = [await push(dlq, sink, n, at=1_000.0 + n) for n, sink in enumerate("abab")]

    assert [item.id for item in await dlq.items("")] == list(reversed(ids))


async def test_items_honours_the_limit(dlq: DLQ) -> None:
    """A limit returns only that many of the newest items."""
    ids = [await push(dlq, "mail", n, at=1_000.0 + n) for n in range(6)]

    assert [item.id for item in await dlq.items("mail", limit=2)] == ids[:-3:-1]
    assert len(await dlq.items("", limit=3)) == 3


async def test_items_of_an_unknown_sink_is_empty(dlq: DLQ) -> None:
    """A sink that never failed has no items and a count of 0."""
    await push(dlq, "mail", 1)

    assert await dlq.items("hook") == []
    assert await dlq.count("hook") == 0


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_below_one_is_invalid(dlq: DLQ, limit: int) -> None:
    """items with limit < 1 raises PARSEC_INVALID_ARGUMENT."""
    with pytest.raises(ParsecError) as caught:
        await dlq.items("mail", limit=limit)

    assert caught.value.code == "PARSEC_INVALID_ARGUMENT"


async def test_count_per_sink_and_in_all(dlq: DLQ) -> None:
    """count(sink) counts one sink; count("") counts every sink."""
    for n in range(3):
        await push(dlq, "mail", n)
    await push(dlq, "hook", 9)

    assert (await dlq.count("mail"), await dlq.count("hook"), await dlq.count("")) == (3, 1, 4)


async def test_discard_removes_one_item(dlq: DLQ) -> None:
    """A discarded item is gone from get, items and count; the others stay."""
    keep = await push(dlq, "mail", 1, at=1.0)
    drop = await push(dlq, "mail", 2, at=2.0)

    assert await dlq.discard(drop)

    assert await dlq.get(drop) is None
    assert [item.id for item in await dlq.items("mail")] == [keep]
    assert await dlq.count("mail") == 1
    assert await dlq.count("") == 1


async def test_discard_is_idempotent(dlq: DLQ) -> None:
    """Discarding twice, or an id never pushed, returns False and changes nothing."""
    id = await push(dlq, "mail", 1)
    await dlq.discard(id)

    assert not await dlq.discard(id)
    assert not await dlq.discard("0000000000000000")
    assert await dlq.count("") == 0


async def test_get_of_unknown_id_is_none(dlq: DLQ) -> None:
    """get of an id never pushed is None."""
    assert await dlq.get("0000000000000000") is None


async def test_concurrent_pushes_all_land(dlq: DLQ) -> None:
    """Many concurrent pushes each get their own id and are all counted."""
    ids = await asyncio.gather(*(push(dlq, "mail", n) for n in range(25)))

    assert len(set(ids)) == 25
    assert await dlq.count("mail") == 25


async def test_item_json_round_trips(dlq: DLQ) -> None:
    """DLQItem.from_json(id, to_json()) rebuilds the stored item."""
    id = await push(dlq, "mail", 3)
    item = await dlq.get(id)
    assert item is not None

    document = item.to_json()
    del document["id"]

    assert DLQItem.from_json(id, document) == item
