"""The other nodes of a cluster, as the revocations one node holds see them (see
``parsec.auth.revocation``): telling them of a revocation, and asking them for theirs
when this node starts on a store without a generation.

Guarantees: a revocation the Controller failed to send is kept and sent again at the next
look (:meth:`Peers.resend`), never dropped; a node's survey answer holds every live entry
it holds; a malformed answer, or a Controller that cannot survey, is logged and skipped,
never raised: a node starts with what it could gather.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

import msgspec

from parsec.auth.revocation_cache import Entries, wire
from parsec.auth.revocation_store import Revocation
from parsec.engine.controller import RevokeCommand
from parsec.engine.revocation import REVOCATIONS_SURVEY

if TYPE_CHECKING:
    from collections.abc import Mapping

    from parsec.auth.revocation_held import HeldRevocations
    from parsec.engine.controller import Controller

__all__ = ["SURVEY_TIMEOUT", "Peers"]

SURVEY_TIMEOUT: Final = 1.0
"""How long a starting node waits for the other nodes' revocations."""

log = logging.getLogger("parsec.auth")

_decode_entries = msgspec.json.Decoder(Entries)


class Peers:
    """This node's link to the others over ``controller`` (None until the node starts
    with one, and for a node alone: then nothing is sent)."""

    def __init__(self, held: HeldRevocations) -> None:
        self._held = held
        self.controller: Controller | None = None
        self._unsent: dict[str, Revocation] = {}
        """Entries the other nodes may not have been told of (the controller failed)."""

    async def broadcast(self, entries: Mapping[str, Revocation]) -> None:
        """Tell the other nodes; when the controller fails, keep the entries to tell
        them at the next look (the other nodes of a shared store load them anyway)."""
        controller = self.controller
        if controller is None or not entries:
            return
        command = RevokeCommand({key: (e.level, e.until) for key, e in entries.items()})
        try:
            await controller.broadcast(command)
        except Exception as exc:
            for key, entry in entries.items():
                self._unsent[key] = entry.merge(self._unsent.get(key, entry))
            log.warning("revocations: could not tell the other nodes yet: %s", exc)

    async def resend(self) -> None:
        """Tell the other nodes what a failed :meth:`broadcast` kept."""
        unsent, self._unsent = self._unsent, {}
        await self.broadcast(unsent)

    def answer(self) -> bytes:
        """Every live entry this node holds, for a node that starts."""
        return msgspec.json.encode(wire(self._held.live_entries()))

    async def ask(self, controller: Controller, wait: float) -> None:
        """Take in what every other live node holds; with ``wait``, first wait up to that
        many seconds for ``controller`` to list another node."""
        try:
            if wait > 0:
                await _some_node(controller, wait)
            replies = await controller.survey(REVOCATIONS_SURVEY, b"", timeout=SURVEY_TIMEOUT)
        except Exception as exc:
            log.warning("revocations: could not ask the other nodes: %s", exc)
            return
        for reply in replies:
            try:
                entries = _decode_entries.decode(reply.data)
            except msgspec.DecodeError:
                log.warning("revocations: malformed answer from node %s ignored", reply.node)
                continue
            self._held.take({key: Revocation(*value) for key, value in entries.items()})


async def _some_node(controller: Controller, wait: float) -> None:
    """Return once ``controller`` lists another node, or after ``wait`` seconds (the
    Controller has no event for a node appearing: this looks every 50 ms)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            while True:
                if await controller.nodes():
                    return
                await asyncio.sleep(0.05)
