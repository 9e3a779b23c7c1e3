"""A real Parsec server on a free loopback port and a raw protocol client for it.

``RawClient`` speaks the Centrifugo client protocol v2 (JSON) with no logic of its own:
it sends frames of ``\\n``-joined commands exactly as given, splits every received frame
into its messages, keeps the ones nobody asked for yet in an inbox, and reports the
close code and reason the server closed with. Every wait is bounded by ``WAIT``.

``Server`` wraps one ``Parsec`` instance served by uvicorn (``Parsec.run``): it mints
tokens with the instance's issuer, opens raw clients and calls the server API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from parsec import ChannelOptions, Namespace, Options, Parsec
from parsec.engine.broker import Broker
from parsec.options import ApiOptions, AuthOptions, ClientOptions, ServerOptions
from parsec.testing import free_port

__all__ = [
    "API_KEY",
    "WAIT",
    "Message",
    "RawClient",
    "Server",
    "default_namespaces",
    "make_options",
    "soon",
    "start_server",
]

WAIT = 5.0
"""Upper bound, in seconds, for any event a test awaits."""

API_KEY = "test-api-key"

Message = dict[str, Any]
Matcher = Callable[[Message], bool]


def default_namespaces() -> list[Namespace]:
    """The namespaces every test server has.

    ``chat``: history (10 pubs), presence, join/leave, forced recovery, open to
    subscribers. ``plain``: no history, no presence, everything open to any client.
    ``locked``: history and presence but no permission without a token. ``opt``: history,
    presence and join/leave that clients opt into (positioning, recovery, join_leave).
    ``anon``: open to anonymous connections.
    """
    return [
        Namespace(
            name="chat",
            history_size=10,
            history_ttl=300.0,
            presence=True,
            join_leave=True,
            force_recovery=True,
            allow_subscribe_for_client=True,
            allow_publish_for_subscriber=True,
            allow_history_for_subscriber=True,
            allow_presence_for_subscriber=True,
        ),
        Namespace(
            name="plain",
            allow_subscribe_for_client=True,
            allow_publish_for_client=True,
            allow_history_for_client=True,
            allow_presence_for_client=True,
        ),
        Namespace(name="locked", history_size=10, history_ttl=300.0, presence=True),
        Namespace(
            name="opt",
            history_size=10,
            history_ttl=300.0,
            presence=True,
            join_leave=True,
            allow_positioning=True,
            allow_recovery=True,
            allow_subscribe_for_client=True,
            allow_presence_for_subscriber=True,
        ),
        Namespace(
            name="anon",
            allow_subscribe_for_client=True,
            allow_subscribe_for_anonymous=True,
            allow_publish_for_client=True,
            allow_publish_for_anonymous=True,
        ),
    ]


def make_options(
    state_dir: Path,
    *,
    client: ClientOptions | None = None,
    namespaces: list[Namespace] | None = None,
    allow_anonymous: bool = False,
    allowed_origins: list[str] | None = None,
    without_namespace: ChannelOptions | None = None,
    native_websocket: bool = True,
    server: Mapping[str, Any] | None = None,
    auth: Mapping[str, Any] | None = None,
) -> Options:
    """Options for a test server on a free loopback port with the test API key;
    ``server`` and ``auth`` set further ServerOptions and AuthOptions fields."""
    return Options(
        server=ServerOptions(
            addr=f"127.0.0.1:{free_port()}",
            allowed_origins=allowed_origins or [],
            native_websocket=native_websocket,
            **(server or {}),
        ),
        auth=AuthOptions(state_dir=state_dir, allow_anonymous=allow_anonymous, **(auth or {})),
        api=ApiOptions(key=API_KEY),
        client=client or ClientOptions(),
        namespaces=default_namespaces() if namespaces is None else namespaces,
        without_namespace=without_namespace or ChannelOptions(),
    )


def soon() -> int:
    """A whole unix second 0.5 to 1.5 s from now: an ``expire_at`` that is still ahead
    when the token is used, yet passes quickly."""
    return math.ceil(time.time() + 0.5)


class RawClient:
    """One WebSocket connection speaking the JSON protocol with no client-side logic."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: deque[Message] = deque()
        self._last_id = 0

    def next_id(self) -> int:
        """A fresh command id (1, 2, 3, …)."""
        self._last_id += 1
        return self._last_id

    # --- sending ----------------------------------------------------------------

    async def send(self, *messages: Mapping[str, Any] | str) -> None:
        """Send one frame: the messages (dicts are JSON-encoded) joined by ``\\n``."""
        parts = [m if isinstance(m, str) else json.dumps(m) for m in messages]
        await self.ws.send("\n".join(parts))

    async def call(self, method: str, body: Mapping[str, Any] | None = None) -> Message:
        """Send one command and return its reply (pushes meanwhile go to the inbox)."""
        command_id = self.next_id()
        await self.send({"id": command_id, method: dict(body or {})})
        return await self.reply(command_id)

    async def connect(self, token: str | None = None, **fields: Any) -> Message:
        """Send ``connect`` (with ``token`` when given) and return the reply."""
        body = dict(fields)
        if token is not None:
            body["token"] = token
        return await self.call("connect", body)

    # --- receiving --------------------------------------------------------------

    async def frame(self) -> list[Message]:
        """The messages of the next frame the server sends (bypasses the inbox).

        Raises ConnectionClosed when the server closed the connection instead."""
        async with asyncio.timeout(WAIT):
            data = await self.ws.recv()
        text = data.decode() if isinstance(data, bytes) else data
        return [json.loads(line) for line in text.split("\n") if line.strip()]

    async def next(self, match: Matcher | None = None) -> Message:
        """The first message (inbox first, then new frames) that ``match`` accepts."""
        for message in list(self.inbox):
            if match is None or match(message):
                self.inbox.remove(message)
                return message
        while True:
            messages = await self.frame()
            for i, message in enumerate(messages):
                if match is None or match(message):
                    self.inbox.extend(messages[i + 1 :])
                    return message
                self.inbox.append(message)

    async def reply(self, command_id: int) -> Message:
        """The reply to the command with ``command_id``."""
        return await self.next(lambda m: m.get("id") == command_id)

    async def push(self, channel: str, kind: str) -> dict[str, Any]:
        """The body of the next ``kind`` push (``pub``, ``join``, …) for ``channel``."""
        message = await self.next(
            lambda m: "push" in m and m["push"].get("channel") == channel and kind in m["push"]
        )
        body: dict[str, Any] = message["push"][kind]
        return body

    async def ping(self) -> None:
        """Wait for the server's next ping (an empty message ``{}``)."""
        await self.next(lambda m: m == {})

    async def closed(self) -> tuple[int, str]:
        """Wait until the server closes the connection; its close code and reason.

        Messages that arrive first go to the inbox. An abnormal closure (no close frame)
        reads as 1006."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                self.inbox.extend(await self.frame())
        code = self.ws.close_code
        return (1006 if code is None else code), self.ws.close_reason or ""

    async def aclose(self) -> None:
        """Close from the client side (idempotent)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(WAIT):
                await self.ws.close()


@dataclass
class Server:
    """A running Parsec instance and helpers to talk to it."""

    parsec: Parsec
    _clients: list[RawClient] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.parsec.options.server.addr}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.parsec.options.server.addr}/connection/websocket"

    async def open_socket(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw TCP connection to the server, for tests that write bytes themselves."""
        host, port = self.parsec.options.server.addr.rsplit(":", 1)
        return await asyncio.open_connection(host, int(port))

    def token(self, user: str = "alice", *, ttl: float | None = 3600, **claims: Any) -> str:
        """A connection token from the server's own issuer."""
        return self.parsec.issuer.connection_token(user, ttl=ttl, **claims)

    def sub_token(self, user: str, channel: str, *, ttl: float | None = 3600, **claims: Any) -> str:
        """A subscription token from the server's own issuer."""
        return self.parsec.issuer.subscription_token(user, channel, ttl=ttl, **claims)

    async def managed(self, *names: str) -> None:
        """Bring Parsec-managed channels to life: open the public ones, create the
        private ones (subscribing and publishing need them to exist and be open)."""
        for name in names:
            if name.startswith("private:"):
                await self.parsec.manager.create_private(name)
            else:
                await self.parsec.open_public(name)

    async def open(self, *, origin: str | None = None) -> RawClient:
        """A raw client connected at the WebSocket level, before any command."""
        ws = await connect(
            self.ws_url,
            origin=None if origin is None else Origin(origin),
            proxy=None,
            compression=None,
            ping_interval=None,
            max_size=None,
            open_timeout=WAIT,
            close_timeout=1,
        )
        client = RawClient(ws)
        self._clients.append(client)
        return client

    async def client(self, user: str = "alice", **claims: Any) -> RawClient:
        """A raw client that has connected successfully as ``user``."""
        client = await self.open()
        reply = await client.connect(self.token(user, **claims))
        assert "connect" in reply, reply
        return client

    async def api(
        self, method: str, body: Mapping[str, Any] | bytes | None = None, *, key: str = API_KEY
    ) -> httpx.Response:
        """POST ``/api/<method>`` with ``body`` (a mapping is sent as JSON)."""
        content = body if isinstance(body, bytes) else json.dumps(dict(body or {})).encode()
        async with httpx.AsyncClient(base_url=self.base_url, trust_env=False) as http:
            return await http.post(
                f"/api/{method}",
                content=content,
                headers={"X-API-Key": key, "Content-Type": "application/json"},
                timeout=WAIT,
            )

    async def api_result(self, method: str, body: Mapping[str, Any] | None = None) -> Any:
        """The ``result`` of a successful server API call."""
        response = await self.api(method, body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert "result" in payload, payload
        return payload["result"]

    async def aclose(self) -> None:
        """Close every client this server opened."""
        for client in self._clients:
            await client.aclose()


@contextlib.asynccontextmanager
async def start_server(
    options: Options,
    *,
    broker: Broker | None = None,
    stopping: list[asyncio.Task[None]] | None = None,
) -> AsyncIterator[Server]:
    """Serve ``options`` with ``Parsec.run`` (and ``broker`` when given, else Parsec's
    own memory broker); yield a ``Server`` once it accepts.

    On exit the clients are closed and Parsec is closed (every session gone). uvicorn
    then needs a few tenths of a second to stop listening: with ``stopping`` the run
    task is appended there for the caller to await later, otherwise it is awaited here.
    """
    ready = asyncio.Event()
    async with Parsec(options, broker=broker) as parsec:
        task = asyncio.create_task(parsec.run(ready.set))
        try:
            async with asyncio.timeout(WAIT):
                ready_wait = asyncio.create_task(ready.wait())
                done, _ = await asyncio.wait(
                    {ready_wait, task}, return_when=asyncio.FIRST_COMPLETED
                )
                if task in done:
                    ready_wait.cancel()
                    task.result()
                    raise RuntimeError("the server stopped before it was ready")
            server = Server(parsec)
            try:
                yield server
            finally:
                await server.aclose()
        finally:
            await parsec.aclose()
            if stopping is not None:
                stopping.append(task)
            else:
                async with asyncio.timeout(WAIT):
                    await task
