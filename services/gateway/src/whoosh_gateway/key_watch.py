"""Open streams end when their key does: revoked or expired keys lose their WebSockets
(and any other long-lived stream) within seconds, on every gateway.

A stream authenticates once, so without this a revoked operator key with an open socket
could keep starting tasks and reading everything for as long as the socket lived. Three
ways end it, so that one missed message cannot keep it open:
  - the ApiKeyRevoked event (every gateway hears it): at once;
  - the key's expiry, checked every `SWEEP_S`;
  - asking the coordinator again about every key with an open stream every `RECHECK_S`
    (catches a revocation whose event this gateway missed, e.g. while reconnecting).
A coordinator that does not answer ends nothing: it cannot say the key is bad.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

from whoosh_shared.contract.api_keys import key_id
from whoosh_shared.contract.queries import ApiKeyView, VerifyApiKey

from whoosh_gateway.callers import Caller
from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.errors import ApiError

log = logging.getLogger(__name__)
SWEEP_S = 1.0
RECHECK_S = 3.0
Ender = Callable[[str], Awaitable[None]]
"""Ends one stream; given the reason the client is told."""


class KeyWatch:
    def __init__(self, coordinator: CoordinatorClient) -> None:
        self.coordinator = coordinator
        self._streams: dict[UUID, dict[int, tuple[Caller, Ender]]] = {}
        self._task: asyncio.Task[None] | None = None

    def open(self, caller: Caller, end: Ender) -> Callable[[], None]:
        """Watch a stream of `caller` (a key's, not auth-disabled); returns its `close`."""
        if caller.prefix is None:
            return lambda: None
        streams = self._streams.setdefault(key_id(caller.prefix), {})
        token = id(end)
        streams[token] = (caller, end)

        def close() -> None:
            streams.pop(token, None)

        return close

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def revoked(self, id_: UUID) -> None:
        """An ApiKeyRevoked event: end the key's streams now."""
        self._end_all(id_, "API key revoked")

    async def _run(self) -> None:
        since_recheck = 0.0
        while True:
            await asyncio.sleep(SWEEP_S)
            since_recheck += SWEEP_S
            try:
                self._end_expired(datetime.now(UTC))
                if since_recheck >= RECHECK_S:
                    since_recheck = 0.0
                    await self._recheck()
            except Exception:  # the watch must outlive one bad round
                log.exception("key watch round failed")

    def _end_expired(self, now: datetime) -> None:
        for id_, streams in list(self._streams.items()):
            expired = [c for c, _ in streams.values() if c.expires_at and c.expires_at <= now]
            if expired:
                self._end_all(id_, "API key expired")

    async def _recheck(self) -> None:
        for id_, streams in list(self._streams.items()):
            if not streams:
                self._streams.pop(id_, None)
                continue
            caller = next(iter(streams.values()))[0]
            if caller.prefix is None or caller.key_hash is None:
                continue
            try:
                await self.coordinator.ask(
                    VerifyApiKey(prefix=caller.prefix, key_hash=caller.key_hash), ApiKeyView
                )
            except ApiError as exc:
                if exc.status == 401:
                    self._end_all(id_, exc.message)

    def _end_all(self, id_: UUID, reason: str) -> None:
        streams = self._streams.pop(id_, {})
        for caller, end in streams.values():
            log.info("ending a stream of %s: %s", caller.actor, reason)
            asyncio.get_running_loop().create_task(end(reason))
