"""Verifying presented API keys, with a short cache that revocation empties at once.

The coordinator verifies a key (it alone holds the hashes); a verified key is kept here
for `key_cache_s` so that a busy client does not cost a bus round trip per request.
Revocation must not wait for that: every gateway listens for ApiKeyRevoked events and
drops the key the moment one arrives, and the gateway that revoked a key waits until
the event is on the bus before it answers, so that when a client hears "revoked" every
gateway already refuses the key. Expiry is checked on every request.

A key this gateway verified before is re-checked with the coordinator when its cache entry
runs out, even while the client's address is over its bound on refused keys: a flood of
bad keys from an address (a proxy, a NAT, localhost) must not lock out the good keys
that share it. Only the key's hash is remembered for that (until the key is revoked or
refused), so the bound still holds for every key this gateway has not seen succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from whoosh_shared.contract import subjects
from whoosh_shared.contract.api_keys import hash_token, hashes_match, key_id, parse_token
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import ApiKeyView, VerifyApiKey
from whoosh_shared.runtime.bus import Bus

from whoosh_gateway.callers import Caller
from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.errors import ApiError
from whoosh_gateway.key_watch import KeyWatch
from whoosh_gateway.refused_keys import RefusedKeys

log = logging.getLogger(__name__)
REVOCATION_WAIT_S = 3.0
MAX_KNOWN_GOOD = 100_000  # memory bound on remembered good keys


def utcnow() -> datetime:
    return datetime.now(UTC)


class KeyVerifier:
    def __init__(
        self,
        coordinator: CoordinatorClient,
        cache_s: float,
        refused: RefusedKeys,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coordinator = coordinator
        self.cache_s = cache_s
        self.refused = refused
        self.clock = clock
        self._cache: dict[UUID, tuple[str, ApiKeyView, float]] = {}
        self._known_good: dict[UUID, str] = {}  # key id -> hash it last verified with
        self._revoked_seen: dict[UUID, asyncio.Event] = {}
        self._sub: Subscription | None = None
        self.streams = KeyWatch(coordinator)  # open streams end with their key

    async def start(self, bus: Bus) -> None:
        """Listen for revocations (core NATS sees what the relay publishes to JetStream)."""
        subject = subjects.events_of_type("apikey", "ApiKeyRevoked")
        self._sub = await bus.nc.subscribe(subject, cb=self._on_revoked)
        self.streams.start()

    async def stop(self) -> None:
        await self.streams.stop()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_revoked(self, msg: Msg) -> None:
        try:
            revoked = EventEnvelope.model_validate_json(msg.data).aggregate_id
        except ValidationError:
            return
        self._cache.pop(revoked, None)
        self._known_good.pop(revoked, None)
        self.streams.revoked(revoked)
        waiting = self._revoked_seen.get(revoked)  # this gateway's own revoke, waiting
        if waiting is not None:
            waiting.set()

    async def verify(self, token: str, address: str) -> Caller:
        """The caller a key stands for; `address` (the client's) bounds how many refused
        keys it may have the coordinator check."""
        prefix = parse_token(token)
        if prefix is None:
            raise ApiError(
                401, "unauthorized", "malformed API key (expected whk_<prefix>_<secret>)"
            )
        token_hash = hash_token(token)
        id_ = key_id(prefix)
        view = self._cached(id_, token_hash)
        if view is None:
            known = self._known_good.get(id_)
            seen_good = known is not None and hashes_match(known, token_hash)
            if not seen_good:
                self.refused.reserve(address)
            try:
                view = await self.coordinator.ask(
                    VerifyApiKey(prefix=prefix, key_hash=token_hash), ApiKeyView
                )
            except ApiError as exc:
                if exc.status != 401 and not seen_good:
                    self.refused.release(address)  # not a refusal: nobody answered
                elif exc.status == 401 and seen_good:
                    self.refused.record(address)
                    self._known_good.pop(id_, None)  # expired or revoked meanwhile
                raise
            if not seen_good:
                self.refused.release(address)
            self._cache[view.id] = (token_hash, view, self.clock())
            self._remember(view.id, token_hash)
        return Caller.for_key(view.prefix, view.name, view.role, view.expires_at, token_hash)

    def _remember(self, id_: UUID, token_hash: str) -> None:
        if id_ not in self._known_good and len(self._known_good) >= MAX_KNOWN_GOOD:
            self._known_good.pop(next(iter(self._known_good)))  # the oldest goes
        self._known_good[id_] = token_hash

    def _cached(self, id_: UUID, token_hash: str) -> ApiKeyView | None:
        entry = self._cache.get(id_)
        if entry is None:
            return None
        stored_hash, view, at = entry
        if self.clock() - at > self.cache_s or not hashes_match(stored_hash, token_hash):
            self._cache.pop(id_, None)
            return None
        if not view.valid_at(utcnow()):  # expired while cached: the coordinator says why
            self._cache.pop(id_, None)
            return None
        return view

    def expect_revocation(self, prefix: str) -> asyncio.Event:
        """Call before revoking: the returned event is set when the revocation is on the bus."""
        return self._revoked_seen.setdefault(key_id(prefix), asyncio.Event())

    async def revoked(self, prefix: str, seen: asyncio.Event) -> None:
        """After an accepted revoke: drop the key here, and wait (bounded) for the event."""
        id_ = key_id(prefix)
        self._cache.pop(id_, None)
        self._known_good.pop(id_, None)
        self.streams.revoked(id_)  # this gateway's own streams end even if the event is late
        try:
            await asyncio.wait_for(seen.wait(), REVOCATION_WAIT_S)
        except TimeoutError:
            log.warning("revocation of %s not seen on the bus in %ss", prefix, REVOCATION_WAIT_S)
        finally:
            self._revoked_seen.pop(id_, None)
