"""The code bundles a client made, each sent to the controller once, before what names it.

A client keeps its newest bundles (:data:`KEPT_BUNDLES`): a controller that restarted
lacks them, and gets each again before the next registration that names it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

#: Code bundles a client keeps to send again (a controller that restarted lacks them).
KEPT_BUNDLES = 16


class BundleOutbox:
    """This client's code bundles (digest -> archive, the oldest go first), and which of
    them the controller has; ``put`` sends one (it asks first whether it is there)."""

    def __init__(self, put: Callable[[str, bytes], Awaitable[None]]) -> None:
        self._put = put
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._at_controller: set[str] = set()
        self._sending: dict[str, asyncio.Future[None]] = {}

    def add(self, digest: str, data: bytes) -> None:
        """Keep a code bundle: it goes to the controller, once, before what names it."""
        self._kept[digest] = data
        self._kept.move_to_end(digest)
        while len(self._kept) > KEPT_BUNDLES:
            self._kept.popitem(last=False)

    async def send(self, digest: str) -> None:
        """Make sure the controller has bundle ``digest``, if it is this client's."""
        if not digest or digest in self._at_controller or digest not in self._kept:
            return  # none, sent, or not ours (a replica's client: the controller has it)
        pending = self._sending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._send(digest, self._kept[digest]))
            self._sending[digest] = pending
            pending.add_done_callback(lambda _: self._sending.pop(digest, None))
        await asyncio.shield(pending)

    async def _send(self, digest: str, data: bytes) -> None:
        await self._put(digest, data)
        self._at_controller.add(digest)

    def controller_lost(self) -> None:
        """The controller may have restarted without them: send each again when named."""
        self._at_controller.clear()
