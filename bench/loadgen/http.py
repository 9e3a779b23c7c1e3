"""A minimal keep-alive HTTP/1.1 client for publishing through a server's HTTP API.

General clients (httpx, aiohttp) spend more CPU per request than the servers under
test, which would make the load generator the bottleneck; this one writes a prebuilt
request and reads the status line, headers and a ``Content-Length`` body, nothing else.
"""

from __future__ import annotations

import asyncio

__all__ = ["HttpConnection", "HttpError"]


class HttpError(Exception):
    """A response this client cannot read (no Content-Length, closed connection)."""


class HttpConnection:
    """One keep-alive connection; requests go one at a time (no pipelining)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    @staticmethod
    def request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
        """The bytes of a ``POST path`` with a JSON ``body``."""
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {host}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send a prebuilt request; the response status and body."""
        self._writer.write(request)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise HttpError("connection closed before the response") from exc
        status_line, _, header_block = head.partition(b"\r\n")
        length = -1
        for line in header_block.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length < 0:
            raise HttpError("response without Content-Length")
        body = await self._reader.readexactly(length)
        return int(status_line.split(b" ", 2)[1]), body

    def close(self) -> None:
        self._writer.close()
