"""Requests per minute per API key, counted in NATS so that every gateway shares them.

A fixed one-minute window per key lives in a JetStream key-value bucket (entries expire
after two minutes); gateways add to it with compare-and-set, so N gateways behind a load
balancer give a key the same budget one would. Within one gateway, the requests of a
key that arrive while an update is in flight are counted together in the next one: one
compare-and-set in flight per key and gateway, however many requests wait, so a busy key
does not turn into a storm of conflicting updates. If the bucket cannot be reached the
request goes through: limits protect the fleet, they are not access control.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ApiError

log = logging.getLogger(__name__)
BUCKET = "WHOOSH_RATE"
WINDOW_S = 60
CAS_TRIES = 20
UNCOUNTED = 0  # what a waiting request learns when the bucket could not be updated


@dataclass
class _Window:
    """The requests of one key and window waiting for their count."""

    waiting: list[asyncio.Future[int]] = field(default_factory=list)
    flushing: bool = False


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.kv: KeyValue | None = None
        self._windows: dict[str, _Window] = {}

    async def start(self, js: JetStreamContext) -> None:
        try:
            self.kv = await js.key_value(BUCKET)
        except BucketNotFoundError:
            self.kv = await js.create_key_value(bucket=BUCKET, ttl=2 * WINDOW_S, history=1)

    async def check(self, caller: Caller) -> None:
        """Count this request; raise 429 with Retry-After when the key's minute is used up."""
        if self.kv is None:
            return
        now = self.clock()
        window = int(now // WINDOW_S)
        key = f"{caller.limit_key}.{window}"
        pending = self._windows.setdefault(key, _Window())
        counted: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending.waiting.append(counted)
        if not pending.flushing:
            pending.flushing = True
            asyncio.get_running_loop().create_task(self._flush(key, pending))
        if await counted > self.per_minute:
            retry_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
            raise ApiError(
                429,
                "rate_limited",
                f"{self.per_minute} requests per minute for this key used up; "
                f"retry in {retry_after}s",
                headers={"Retry-After": str(retry_after)},
            )

    async def _flush(self, key: str, pending: _Window) -> None:
        """Add the waiting requests to the shared count, batch by batch, until none wait."""
        batch: list[asyncio.Future[int]] = []
        try:
            while pending.waiting:
                batch, pending.waiting = pending.waiting, []
                base = await self._add(key, len(batch))
                for position, counted in enumerate(batch, start=1):
                    counted.set_result(UNCOUNTED if base is None else base + position)
                batch = []
        finally:
            for counted in batch + pending.waiting:  # never leave a request waiting
                if not counted.done():
                    counted.set_result(UNCOUNTED)
            pending.waiting = []
            pending.flushing = False
            self._windows.pop(key, None)

    async def _add(self, key: str, amount: int) -> int | None:
        """The count before adding `amount`, or None when the bucket could not be updated."""
        assert self.kv is not None
        try:
            for _ in range(CAS_TRIES):
                try:
                    entry = await self.kv.get(key)
                    count, revision = int(entry.value or b"0"), entry.revision
                except KeyNotFoundError:
                    count, revision = 0, None
                try:
                    if revision is None:
                        await self.kv.create(key, str(amount).encode())
                    else:
                        await self.kv.update(key, str(count + amount).encode(), last=revision)
                    return count
                except KeyWrongLastSequenceError:
                    continue  # another gateway counted first: read again
        except (nats.errors.Error, ValueError) as exc:
            log.warning("rate limit not counted: %s", exc)
            return None
        log.warning("rate limit not counted: %d conflicting updates of %s", CAS_TRIES, key)
        return None
