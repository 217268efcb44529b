"""Notice NATS reconnects, so live subscribers can re-read what they missed.

nats-py resubscribes core subscriptions by itself after a reconnect, but whatever was
published while the connection was down is gone for a core subscriber. A subscriber that
must not miss anything (the gateway's event fan-out, executors' cancellations, the
monitor) watches the client's reconnect count and catches up from the stream or the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 0.1


def reconnect_count(nc: Client) -> int:
    return int(nc.stats.get("reconnects", 0))


async def after_each_reconnect(
    nc: Client, catch_up: Callable[[], Awaitable[None]], interval_s: float = WATCH_INTERVAL_S
) -> None:
    """Run `catch_up` once connected again after every reconnect (run it supervised)."""
    seen = reconnect_count(nc)
    while True:
        await asyncio.sleep(interval_s)
        count = reconnect_count(nc)
        if count != seen and nc.is_connected:
            log.warning("NATS reconnected: catching up on what was missed")
            await catch_up()
            seen = count
