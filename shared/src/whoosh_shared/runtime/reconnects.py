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
from nats.js import JetStreamContext

from whoosh_shared.contract import subjects

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 0.1


def reconnect_count(nc: Client) -> int:
    return int(nc.stats.get("reconnects", 0))


async def after_each_reconnect(
    nc: Client, catch_up: Callable[[], Awaitable[None]], interval_s: float = WATCH_INTERVAL_S
) -> None:
    """Run `catch_up` once connected again after every reconnect (run it supervised). A
    catch-up that fails is logged and tried again: giving up would lose what it is for."""
    seen = reconnect_count(nc)
    while True:
        await asyncio.sleep(interval_s)
        count = reconnect_count(nc)
        if count == seen or not nc.is_connected:
            continue
        log.warning("NATS reconnected: catching up on what was missed")
        delay = interval_s
        while True:
            try:
                await catch_up()
                break
            except Exception as exc:
                log.error("catching up after a reconnect failed, retrying: %s: %s",
                          type(exc).__name__, exc)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        seen = count


async def last_relayed_id(js: JetStreamContext) -> int:
    """The notification id of the last event on the stream: where live events start for a
    subscriber that starts now (0: no stream or no event yet)."""
    try:
        last = await js.get_last_msg(subjects.EVENTS_STREAM, subjects.EVENTS_WILDCARD)
    except Exception:
        return 0
    return int((last.headers or {}).get(subjects.NOTIFICATION_ID_HEADER) or 0)
