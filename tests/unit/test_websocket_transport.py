"""The ASGI WebSocket transport's tasks: the writer and the receive of each wait end
with the connection, whatever path it takes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parsec.engine.lifecycle import IllegalTransition
from parsec.transports.websocket import WebSocketTransport, WriterState, _receive_unless


class _Peer:
    """An ASGI receive that never answers, recording whether it was cancelled."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.cancelled = False

    async def receive(self) -> dict[str, Any]:
        self.waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


async def test_closing_first_cancels_the_receive() -> None:
    """When the session closes while the peer is silent, the pending receive is
    cancelled and awaited before None is returned."""
    peer = _Peer()
    closing = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(_receive_unless(peer.receive, closing))
    await peer.waiting.wait()
    closing.set_result(None)
    assert await waiter is None
    assert peer.cancelled


async def test_a_cancelled_reader_cancels_its_receive() -> None:
    """Cancelling the reader (the ASGI task stops) leaves no receive task behind."""
    peer = _Peer()
    closing = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(_receive_unless(peer.receive, closing))
    await peer.waiting.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert peer.cancelled


async def test_the_writer_sends_the_queue_then_the_close_and_ends() -> None:
    """OPEN → CLOSING → DONE: what was written before close is sent, then the close
    frame; writes after close are ignored; abort afterwards is harmless."""
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(dict(message))

    transport = WebSocketTransport(send, 1024)
    assert transport.write(b"{}")
    transport.close(3001, "shutdown")
    assert transport.write(b"late")
    await transport.finish()
    assert sent == [
        {"type": "websocket.send", "text": "{}"},
        {"type": "websocket.close", "code": 3001, "reason": "shutdown"},
    ]
    assert transport._state is WriterState.DONE
    transport.abort()
    transport.close(3000, "again")
    assert transport._state is WriterState.DONE


async def test_abort_ends_the_writer_at_once() -> None:
    """abort cancels the writer task even with nothing closed; a DONE writer cannot
    move back."""

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent")

    transport = WebSocketTransport(send, 1024)
    transport.abort()
    with pytest.raises(asyncio.CancelledError):
        await transport._writer
    assert transport._state is WriterState.DONE
    with pytest.raises(IllegalTransition):
        transport._advance(WriterState.CLOSING)
