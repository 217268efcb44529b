"""Leasing channels on a few long-lived connections to one host (transport-agnostic).

Why a pool: an SSH handshake costs a round trip or three plus key exchange CPU on
both sides, and sshd throttles handshakes in flight (MaxStartups). A task should
cost one channel on a connection that is already up. But a connection carries only
so many sessions (sshd's MaxSessions, 10 by default, refuses the rest), so a host
gets a small set of connections, each carrying at most `channels_per_connection`.

The rules, all kept here in plain Python so they are tested without a network:
- connections open lazily, when waiters outnumber the free channels (and the ones
  connections being set up will bring), never more than `max_connections` and never
  more than `max_handshakes` handshakes at once;
- a refused channel open means "this connection is full": it takes no more until one
  of its channels closes (or a short while passes: sshd frees a session slot a moment
  after the channel closes), and the open is retried on another connection; refused
  twice at the same level, that level becomes the connection's capacity;
- a connection that closes or dies is evicted, and the next one to that host opens
  only after a jittered, growing backoff, so a host that went down is not hammered;
- a waiter is failed (not left hanging) once a connect attempt made after it began
  waiting has failed and there is nothing else to wait for.

The transport plugs in through `Connector` (connect, close, wait until closed) and
the `opener` passed to `open` (which raises `ChannelRefused` or `ConnectionGone`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

C = TypeVar("C")
T = TypeVar("T")

# How long a refusal marks a connection full when none of its channels closes meanwhile.
REFUSAL_HOLD_S = 0.5
# Waiters re-check at least this often (refusal marks and backoffs expire by time).
WAIT_POLL_S = 0.5
# A connection that lived this long resets the backoff: its death is news, not a pattern.
HEALTHY_AFTER_S = 60.0


class ChannelRefused(Exception):
    """The server refused a new channel on a live connection: treat the connection as full."""


class ConnectionGone(Exception):
    """The connection died under an open: evict it and retry elsewhere."""


class PoolClosed(Exception):
    """The pool is shutting down."""


class ConnectFailed(Exception):
    """No connection could be made; `cause` is the connector's exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Connector(Protocol[C]):
    async def connect(self) -> C: ...

    def close(self, conn: C) -> None: ...

    async def wait_closed(self, conn: C) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits base*2^(n-1), capped, times [½, 1)."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        if failures <= 0:
            return 0.0
        ceiling = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        return ceiling * (0.5 + rng() / 2)


@dataclass(eq=False)
class PooledConnection(Generic[C]):
    """One connection and its channel accounting."""

    conn: C
    capacity: int
    opened_at: float
    in_use: int = 0  # slots taken: channels open and opens under way
    open_channels: int = 0  # channels the server accepted and that are not released yet
    peak: int = 0  # most open channels at once
    alive: bool = True
    refused_at: int | None = None  # channels in use when the last open was refused
    refused_until: float = 0.0
    refusals_at_level: int = 0

    def takes_more(self, now: float) -> bool:
        if not self.alive or self.in_use >= self.capacity:
            return False
        held = self.refused_at is not None and self.in_use >= self.refused_at
        return not (held and now < self.refused_until)


class Lease(Generic[C]):
    """One channel slot on one connection, held until `release` (idempotent)."""

    def __init__(self, pool: HostPool[C], pooled: PooledConnection[C]) -> None:
        self._pool = pool
        self._pooled = pooled
        self._released = False
        self._opened = False

    def _mark_open(self) -> None:
        self._opened = True
        self._pooled.open_channels += 1
        self._pooled.peak = max(self._pooled.peak, self._pooled.open_channels)

    @property
    def connection(self) -> C:
        return self._pooled.conn

    @property
    def alive(self) -> bool:
        return self._pooled.alive

    def release(self) -> None:
        if not self._released:
            self._released = True
            if self._opened:
                self._pooled.open_channels -= 1
            self._pool._release(self._pooled)


@dataclass(frozen=True)
class PoolSnapshot:
    """What a pool holds and has done, for tests and logs."""

    connections: int
    in_use: tuple[int, ...]  # per live connection
    peaks: tuple[int, ...]  # most channels open at once, per connection ever made
    connects: int
    failed_connects: int
    evictions: int
    refusals: int
    max_connections_seen: int


@dataclass
class _Counters:
    connects: int = 0
    failed_connects: int = 0
    evictions: int = 0
    refusals: int = 0
    max_connections_seen: int = 0
    peaks: dict[int, int] = field(default_factory=dict)


class HostPool(Generic[C]):
    """The connections to one host and the channels leased on them."""

    def __init__(
        self,
        connector: Connector[C],
        *,
        channels_per_connection: int,
        max_connections: int,
        max_handshakes: int = 2,
        backoff: Backoff | None = None,
        handshake_gate: asyncio.Semaphore | None = None,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if channels_per_connection < 1 or max_connections < 1 or max_handshakes < 1:
            raise ValueError("pool sizes must be positive")
        self.connector = connector
        self.channels_per_connection = channels_per_connection
        self.max_connections = max_connections
        self.max_handshakes = max_handshakes
        self.backoff = backoff or Backoff()
        self.name = name
        self._gate = handshake_gate
        self._clock = clock
        self._connections: list[PooledConnection[C]] = []
        self._connecting = 0
        self._waiting = 0
        self._failures = 0  # consecutive: sets the backoff
        self._next_connect_at = 0.0
        self._last_error: BaseException | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._stats = _Counters()

    # -- leasing -------------------------------------------------------------------------

    async def open(
        self, opener: Callable[[C], Awaitable[T]], *, urgent: bool = False
    ) -> tuple[Lease[C], T]:
        """Lease a channel slot and open the channel with `opener(connection)`.

        Waits for a free slot (or a new connection) as long as it takes: callers bound
        it with their own deadline. `urgent` (a kill) ignores capacity and refusal marks
        on live connections and never waits: with none that accepts, ConnectFailed.
        """
        seen_failures = self._stats.failed_connects
        tried: set[int] = set()
        self._waiting += 1
        try:
            while True:
                if self._closed:
                    raise PoolClosed(f"pool for {self.name} is closed")
                pooled = self._pick(urgent, tried)
                if pooled is not None:
                    opened = await self._open_on(pooled, opener, urgent, tried)
                    if opened is not None:
                        return opened
                    continue
                if urgent:
                    raise ConnectFailed(
                        self._last_error or ConnectionError(f"no open connection to {self.name}")
                    )
                self._maybe_connect()
                nothing_pending = not self._connections and not self._connecting
                if nothing_pending and self._stats.failed_connects > seen_failures:
                    assert self._last_error is not None
                    raise ConnectFailed(self._last_error)
                await self._wait_for_change()
        finally:
            self._waiting -= 1

    async def _open_on(
        self,
        pooled: PooledConnection[C],
        opener: Callable[[C], Awaitable[T]],
        urgent: bool,
        tried: set[int],
    ) -> tuple[Lease[C], T] | None:
        """Open one channel on `pooled`; None if refused or gone (the caller picks again)."""
        pooled.in_use += 1
        lease = Lease(self, pooled)
        try:
            result = await opener(pooled.conn)
        except ChannelRefused:
            lease.release()
            self._refused(pooled)
            if urgent:
                tried.add(id(pooled))
            return None
        except ConnectionGone as exc:
            lease.release()
            self._evict(pooled, exc)
            return None
        except BaseException:
            lease.release()
            raise
        lease._mark_open()
        if pooled.refused_at is not None and pooled.open_channels > pooled.refused_at:
            pooled.refused_at = None  # the level it was refused at is past: it was transient
        return lease, result

    def _pick(self, urgent: bool, tried: set[int]) -> PooledConnection[C] | None:
        """The least loaded connection that takes another channel (fills evenly)."""
        now = self._clock()
        if urgent:
            candidates = [p for p in self._connections if p.alive and id(p) not in tried]
        else:
            candidates = [p for p in self._connections if p.takes_more(now)]
        return min(candidates, key=lambda p: p.in_use, default=None)

    def _release(self, pooled: PooledConnection[C]) -> None:
        pooled.in_use -= 1
        self._notify()

    def _refused(self, pooled: PooledConnection[C]) -> None:
        """A refused open: the connection is full at its current level (learned if repeated)."""
        self._stats.refusals += 1
        level = pooled.open_channels
        if pooled.refused_at == level:
            pooled.refusals_at_level += 1
        else:
            pooled.refused_at, pooled.refusals_at_level = level, 1
        if pooled.refusals_at_level >= 2 and level >= 1:
            pooled.capacity = min(pooled.capacity, level)
        pooled.refused_until = self._clock() + REFUSAL_HOLD_S
        log.debug("%s: channel refused at %d open; connection full", self.name, level)

    # -- connecting ----------------------------------------------------------------------

    def _maybe_connect(self) -> None:
        """Start a handshake if waiters outnumber what is free and coming, within limits."""
        if self._closed or self._connecting >= self.max_handshakes:
            return
        if len(self._connections) + self._connecting >= self.max_connections:
            return
        if self._waiting <= self._connecting * self.channels_per_connection:
            return  # the connections on their way will take everyone waiting
        if self._clock() < self._next_connect_at:
            return  # backing off; waiters poll and come back
        self._connecting += 1
        task = asyncio.create_task(self._connect(), name=f"ssh-connect-{self.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> None:
        try:
            if self._gate is not None:
                async with self._gate:
                    conn = await self.connector.connect()
            else:
                conn = await self.connector.connect()
        except Exception as exc:
            self._stats.failed_connects += 1
            self._last_error = exc
            self._back_off()
            log.warning("cannot connect to %s: %s", self.name, exc)
            return
        finally:
            self._connecting -= 1
            self._notify()
        if self._closed:
            self.connector.close(conn)
            return
        self._failures = 0
        self._last_error = None
        pooled = PooledConnection(conn, self.channels_per_connection, opened_at=self._clock())
        self._connections.append(pooled)
        self._stats.connects += 1
        self._stats.max_connections_seen = max(
            self._stats.max_connections_seen, len(self._connections)
        )
        watcher = asyncio.create_task(self._watch(pooled), name=f"ssh-watch-{self.name}")
        self._tasks.add(watcher)
        watcher.add_done_callback(self._tasks.discard)
        self._notify()

    async def _watch(self, pooled: PooledConnection[C]) -> None:
        with contextlib.suppress(Exception):
            await self.connector.wait_closed(pooled.conn)
        if not self._closed:
            self._evict(pooled, ConnectionError("connection closed"))

    def _evict(self, pooled: PooledConnection[C], why: BaseException) -> None:
        if not pooled.alive:
            return
        pooled.alive = False
        self._stats.peaks[id(pooled)] = pooled.peak
        if pooled in self._connections:
            self._connections.remove(pooled)
        self._stats.evictions += 1
        if self._clock() - pooled.opened_at >= HEALTHY_AFTER_S:
            self._failures = 0
        self._back_off()
        log.warning("connection to %s lost (%s); evicted", self.name, why)
        self.connector.close(pooled.conn)
        self._notify()

    def _back_off(self) -> None:
        self._failures += 1
        self._next_connect_at = self._clock() + self.backoff.delay(self._failures)

    # -- waiting and closing -------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self) -> None:
        changed = self._changed
        timeout = WAIT_POLL_S
        until_connect = self._next_connect_at - self._clock()
        if 0 < until_connect < timeout:
            timeout = until_connect
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def snapshot(self) -> PoolSnapshot:
        live = list(self._connections)
        return PoolSnapshot(
            connections=len(live),
            in_use=tuple(p.in_use for p in live),
            peaks=tuple(p.peak for p in live) + tuple(self._stats.peaks.values()),
            connects=self._stats.connects,
            failed_connects=self._stats.failed_connects,
            evictions=self._stats.evictions,
            refusals=self._stats.refusals,
            max_connections_seen=self._stats.max_connections_seen,
        )

    async def close(self) -> None:
        """Close every connection and stop connecting; waiters get PoolClosed."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pooled in self._connections:
            pooled.alive = False
            self.connector.close(pooled.conn)
        self._connections.clear()
        self._notify()
