"""A bound on API keys the coordinator refuses, per client address.

Why: a known key is verified from the gateway's cache, but every unknown, expired or
revoked key costs a query to the coordinator, which holds the hashes. Without a bound, a
script stuck on a wrong key (or someone guessing) turns each request into coordinator
work. Here each gateway counts, per client address and clock minute, the keys the
coordinator refused; past the limit, a key that would need the coordinator is answered
429 with Retry-After without asking it. Keys already verified (cached) are not affected,
so a proxy's address shared with well-behaved clients keeps serving them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from whoosh_gateway.errors import ApiError

WINDOW_S = 60.0
MAX_ADDRESSES = 100_000  # memory bound: beyond it the oldest minute's counts are dropped


class RefusedKeys:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._window = -1
        self._counts: dict[str, int] = {}

    def reserve(self, address: str) -> None:
        """Count a check about to be asked of the coordinator as a refusal, or raise 429 if
        `address` has used up its refusals for this minute. Counting before the answer
        keeps the bound under concurrency: 32 checks in flight at the limit's edge would
        otherwise all pass. A key the coordinator accepts is `release`d again."""
        self._roll()
        if self._counts.get(address, 0) >= self.per_minute:
            retry_after = max(1, math.ceil((self._window + 1) * WINDOW_S - self.clock()))
            raise ApiError(
                429,
                "rate_limited",
                f"{self.per_minute} refused API keys per minute from {address} used up; "
                f"check the key, and retry in {retry_after}s",
                headers={"Retry-After": str(retry_after)},
            )
        self.record(address)

    def release(self, address: str) -> None:
        """A reserved check was not a refusal (the key was good, or nobody answered)."""
        self._roll()
        count = self._counts.get(address, 0)
        if count > 0:
            self._counts[address] = count - 1

    def record(self, address: str) -> None:
        """Count a refusal that was not reserved (a known key refused on its re-check)."""
        self._roll()
        if address not in self._counts and len(self._counts) >= MAX_ADDRESSES:
            return  # a flood of addresses: stop counting new ones rather than grow
        self._counts[address] = self._counts.get(address, 0) + 1

    def _roll(self) -> None:
        window = int(self.clock() // WINDOW_S)
        if window != self._window:
            self._window, self._counts = window, {}
