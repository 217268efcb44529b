"""The pool's rules on a fake transport: lazy connects, channel limits, refusals, eviction,
backoff, bounded handshakes, failing waiters, urgent opens, closing."""

from __future__ import annotations

import asyncio

import pytest
from harness import eventually
from whoosh_executor_cli.ssh_pool import (
    Backoff,
    ChannelRefused,
    ConnectFailed,
    ConnectionGone,
    HostPool,
    Lease,
    PoolClosed,
)

FAST = Backoff(base_s=0.05, cap_s=0.2)


class FakeConn:
    def __init__(self, number: int, server_limit: int | None) -> None:
        self.number = number
        self.server_limit = server_limit  # like sshd's MaxSessions
        self.channels = 0
        self.closed = asyncio.Event()
        self.dead = False


class FakeConnector:
    def __init__(
        self, *, delay: float = 0.0, failures: int = 0, server_limit: int | None = None
    ) -> None:
        self.delay = delay
        self.failures = failures  # this many connects fail first
        self.server_limit = server_limit
        self.attempts = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.conns: list[FakeConn] = []

    async def connect(self) -> FakeConn:
        self.attempts += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionRefusedError("connection refused")
        finally:
            self.in_flight -= 1
        conn = FakeConn(len(self.conns), self.server_limit)
        self.conns.append(conn)
        return conn

    def close(self, conn: FakeConn) -> None:
        conn.closed.set()

    async def wait_closed(self, conn: FakeConn) -> None:
        await conn.closed.wait()


async def open_channel(conn: FakeConn) -> FakeConn:
    if conn.dead:
        raise ConnectionGone("dead")
    if conn.server_limit is not None and conn.channels >= conn.server_limit:
        raise ChannelRefused("open failed")
    conn.channels += 1
    return conn


def release(lease: Lease[FakeConn], conn: FakeConn) -> None:
    conn.channels -= 1
    lease.release()


def pool_of(connector: FakeConnector, **kw: object) -> HostPool[FakeConn]:
    options: dict[str, object] = {
        "channels_per_connection": 3,
        "max_connections": 2,
        "backoff": FAST,
        "name": "fake",
    }
    options.update(kw)
    return HostPool(connector, **options)  # type: ignore[arg-type]


async def test_connections_open_lazily_and_fill_before_another_opens() -> None:
    connector = FakeConnector()
    pool = pool_of(connector)
    assert connector.attempts == 0  # nothing until the first channel is wanted
    opened = [await pool.open(open_channel) for _ in range(3)]
    assert connector.attempts == 1
    assert pool.snapshot().in_use == (3,)
    opened.append(await pool.open(open_channel))  # the fourth needs a second connection
    assert connector.attempts == 2
    assert sorted(pool.snapshot().in_use) == [1, 3]
    for lease, conn in opened:
        release(lease, conn)
    assert pool.snapshot().in_use == (0, 0)
    await pool.close()


async def test_waiters_beyond_every_connection_wait_for_a_released_channel() -> None:
    connector = FakeConnector()
    pool = pool_of(connector, channels_per_connection=2, max_connections=2)
    held = [await pool.open(open_channel) for _ in range(4)]
    late = asyncio.create_task(pool.open(open_channel))
    await asyncio.sleep(0.2)
    assert not late.done()
    assert connector.attempts == 2  # never past max_connections
    release(*held.pop())
    lease, conn = await asyncio.wait_for(late, 2)
    assert pool.snapshot().peaks == (2, 2)
    release(lease, conn)
    for item in held:
        release(*item)
    await pool.close()


async def test_a_burst_is_served_within_the_limits_with_bounded_handshakes() -> None:
    connector = FakeConnector(delay=0.05)
    pool = pool_of(connector, channels_per_connection=2, max_connections=4, max_handshakes=2)

    async def one() -> None:
        lease, conn = await pool.open(open_channel)
        await asyncio.sleep(0.05)
        release(lease, conn)

    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(20))), 10)
    snap = pool.snapshot()
    assert connector.peak_in_flight <= 2
    assert snap.max_connections_seen <= 4
    assert max(snap.peaks) <= 2
    await pool.close()


async def test_a_refused_channel_marks_the_connection_full_and_goes_elsewhere() -> None:
    connector = FakeConnector(server_limit=2)  # the server takes fewer than we planned
    pool = pool_of(connector, channels_per_connection=4, max_connections=3)
    held = [await pool.open(open_channel) for _ in range(5)]
    snap = pool.snapshot()
    assert snap.refusals >= 1
    assert all(conn.channels <= 2 for conn in connector.conns)
    assert sorted(snap.in_use) == [1, 2, 2]
    for item in held:
        release(*item)
    await pool.close()


async def test_refused_twice_at_one_level_becomes_the_capacity() -> None:
    connector = FakeConnector(server_limit=1)
    pool = pool_of(connector, channels_per_connection=4, max_connections=1)
    first = await pool.open(open_channel)
    waiting = asyncio.create_task(pool.open(open_channel))
    await eventually(lambda: pool.snapshot().refusals >= 2, timeout=5, what="two refusals")
    assert pool._connections[0].capacity == 1
    release(*first)
    second = await asyncio.wait_for(waiting, 2)
    release(*second)
    await pool.close()


async def test_a_closed_connection_is_evicted_and_replaced_after_a_backoff() -> None:
    connector = FakeConnector()
    pool = pool_of(connector)
    lease, conn = await pool.open(open_channel)
    release(lease, conn)
    conn.closed.set()  # the server went away
    await eventually(lambda: pool.snapshot().evictions == 1, timeout=2, what="eviction")
    assert pool.snapshot().connections == 0
    lease, again = await asyncio.wait_for(pool.open(open_channel), 5)
    assert again is not conn and connector.attempts == 2
    release(lease, again)
    await pool.close()


async def test_a_connection_dying_under_an_open_is_evicted_and_the_open_retried() -> None:
    connector = FakeConnector()
    pool = pool_of(connector, max_connections=1)
    lease, conn = await pool.open(open_channel)
    release(lease, conn)
    conn.dead = True
    lease, again = await asyncio.wait_for(pool.open(open_channel), 5)
    assert again is not conn
    assert pool.snapshot().evictions == 1
    release(lease, again)
    await pool.close()


async def test_waiters_fail_with_the_cause_when_connecting_fails() -> None:
    connector = FakeConnector(failures=1)
    pool = pool_of(connector)
    with pytest.raises(ConnectFailed) as caught:
        await asyncio.wait_for(pool.open(open_channel), 5)
    assert isinstance(caught.value.cause, ConnectionRefusedError)
    # the host is back: the next open connects (after the backoff) and succeeds
    lease, conn = await asyncio.wait_for(pool.open(open_channel), 5)
    assert connector.attempts == 2
    release(lease, conn)
    await pool.close()


async def test_many_waiters_on_a_down_host_all_fail_after_one_attempt_each_at_most() -> None:
    connector = FakeConnector(failures=100, delay=0.02)
    pool = pool_of(connector)
    results = await asyncio.wait_for(
        asyncio.gather(*(pool.open(open_channel) for _ in range(10)), return_exceptions=True), 10
    )
    assert all(isinstance(r, ConnectFailed) for r in results)
    assert connector.attempts <= 3  # not one handshake per waiter
    await pool.close()


async def test_urgent_opens_ignore_capacity_but_never_wait() -> None:
    connector = FakeConnector()
    pool = pool_of(connector, channels_per_connection=1, max_connections=1)
    with pytest.raises(ConnectFailed):
        await pool.open(open_channel, urgent=True)  # no live connection: no waiting
    held = await pool.open(open_channel)
    urgent = await asyncio.wait_for(pool.open(open_channel, urgent=True), 1)
    assert pool.snapshot().in_use == (2,)
    release(*urgent)
    release(*held)
    await pool.close()


async def test_closing_fails_waiters_and_closes_connections() -> None:
    connector = FakeConnector()
    pool = pool_of(connector, channels_per_connection=1, max_connections=1)
    held = await pool.open(open_channel)
    waiting = asyncio.create_task(pool.open(open_channel))
    await asyncio.sleep(0.05)
    await pool.close()
    with pytest.raises(PoolClosed):
        await asyncio.wait_for(waiting, 2)
    assert all(conn.closed.is_set() for conn in connector.conns)
    release(*held)


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0)
    assert backoff.delay(0) == 0.0
    assert backoff.delay(1, rng=lambda: 0.0) == 0.5
    assert backoff.delay(1, rng=lambda: 0.999) == pytest.approx(1.0, abs=0.01)
    assert backoff.delay(3, rng=lambda: 0.999) == pytest.approx(4.0, abs=0.01)
    assert backoff.delay(10, rng=lambda: 0.999) == pytest.approx(8.0, abs=0.01)
    assert len({backoff.delay(4) for _ in range(20)}) > 1
