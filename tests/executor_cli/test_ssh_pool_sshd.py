"""The pool against real sshd servers: a burst within a lowered MaxSessions, and a server
that dies mid-task (the run fails with a clear reason, the remote command still stops at
its deadline, and the pool connects again once the server is back)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from executor_cli.sshd_server import SshdFactory, sshd_factory_fixture
from harness import alive, eventually
from whoosh_executor_cli.remote_process import RemoteProcess
from whoosh_executor_cli.run_result import Outcome
from whoosh_executor_cli.ssh_client import SshPool
from whoosh_executor_cli.ssh_pool import Backoff

__all__ = ["sshd_factory_fixture"]  # the fixture, found here by pytest

MAX_SESSIONS = 3
TASKS = 16


@pytest.fixture
async def pool() -> AsyncIterator[SshPool]:
    pool = SshPool(backoff=Backoff(base_s=0.2, cap_s=1.0))
    yield pool
    await pool.close()


@pytest.mark.parametrize("channels_per_connection", [MAX_SESSIONS, 8])
async def test_a_burst_completes_within_maxsessions(
    sshd_factory: SshdFactory, pool: SshPool, channels_per_connection: int
) -> None:
    """16 tasks at once on a host whose sshd allows 3 sessions per connection: with the
    setting right, or set above the server's limit (then refusals teach the pool)."""
    server = sshd_factory(max_sessions=MAX_SESSIONS)
    settings = server.settings(channels_per_connection=channels_per_connection, max_connections=3)
    target = server.agent("burst", ["sh"], ssh=settings).ssh_target()
    assert target is not None

    async def task(n: int) -> tuple[int, str, Outcome]:
        process = RemoteProcess(
            ["sh", "-c", f"sleep 0.3; echo task-{n}"], target=target, pool=pool, timeout_s=60
        )
        result = await process.run()
        return n, result.output, result.outcome

    results = await asyncio.wait_for(asyncio.gather(*(task(n) for n in range(TASKS))), 60)
    assert [(n, out, outcome) for n, out, outcome in results] == [
        (n, f"task-{n}\n", Outcome.EXITED) for n in range(TASKS)
    ]
    snap = pool.host_pool(target).snapshot()
    assert max(snap.peaks) <= MAX_SESSIONS  # no connection ever carried more than sshd allows
    assert snap.max_connections_seen <= 3
    assert snap.connections >= 2  # the burst needed more than one connection
    if channels_per_connection > MAX_SESSIONS:
        assert snap.refusals >= 1  # learnt from the server, not from the settings


async def test_readings_count_the_channels_in_use_against_the_hosts_capacity(
    sshd_factory: SshdFactory, pool: SshPool, tmp_path: Path
) -> None:
    """What the heartbeat carries for the monitor's SSH pool-saturation alert."""
    server = sshd_factory()
    settings = server.settings(channels_per_connection=2, max_connections=2)
    target = server.agent("gauge", ["sh"], ssh=settings).ssh_target()
    assert target is not None
    assert pool.readings() == []  # no host talked to yet
    gate = tmp_path / "go"
    runs = [
        asyncio.create_task(
            RemoteProcess(
                ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"],
                target=target,
                pool=pool,
                timeout_s=30,
            ).run()
        )
        for _ in range(3)
    ]
    (busy,) = await eventually(
        lambda: [r for r in pool.readings() if r.in_use == 3], timeout=15, what="3 channels"
    )
    assert (busy.target, busy.capacity) == (target.label, 4)
    gate.touch()
    await asyncio.wait_for(asyncio.gather(*runs), 30)
    assert [r.in_use for r in pool.readings()] == [0]


async def test_sshd_dying_mid_task_fails_it_clearly_and_the_pool_recovers(
    sshd_factory: SshdFactory, pool: SshPool, tmp_path: Path
) -> None:
    server = sshd_factory()
    target = server.agent("fragile", ["sh"]).ssh_target()
    assert target is not None
    pid_file = tmp_path / "pid"
    process = RemoteProcess(
        ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
        target=target,
        pool=pool,
        timeout_s=6.0,
    )
    running = asyncio.create_task(process.run())
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10)
    command_pid = int(pid_file.read_text())
    crashed_at = time.monotonic()

    server.crash()  # every sshd process SIGKILLed: connections drop, the command lives on
    result = await asyncio.wait_for(running, 30)
    assert result.outcome is Outcome.TRANSPORT_FAILED
    assert result.error is not None
    assert f"ssh connection to {target.label} lost while the command ran" in result.error
    assert "could not be reached to kill it and stops at its deadline" in result.error
    assert alive(command_pid)  # orphaned on the host, as after a network cut...
    # ...until the wrapper's own deadline (timeout + margin + grace) kills it
    await eventually(lambda: not alive(command_pid), timeout=20, what="the deadline kill")
    assert time.monotonic() - crashed_at < 20

    # while the server is down, a new run fails fast with the cause, not hanging
    down = await asyncio.wait_for(
        RemoteProcess(["true"], target=target, pool=pool, timeout_s=30).run(), 30
    )
    assert down.outcome is Outcome.TRANSPORT_FAILED
    assert down.error is not None and "cannot reach" in down.error

    server.start()  # back on the same port, same host key
    again = await asyncio.wait_for(
        RemoteProcess(["echo", "back"], target=target, pool=pool, timeout_s=30).run(), 30
    )
    assert (again.outcome, again.output) == (Outcome.EXITED, "back\n")
    snap = pool.host_pool(target).snapshot()
    assert snap.evictions >= 1 and snap.connects >= 2


async def test_a_dropped_connections_run_is_killed_over_a_new_one(
    sshd_factory: SshdFactory, pool: SshPool, tmp_path: Path
) -> None:
    """Only the connection died (the host is fine): the run is killed at once through a
    new connection, so a retry elsewhere never runs beside it."""
    server = sshd_factory()
    target = server.agent("dropped", ["sh"]).ssh_target()
    assert target is not None
    pid_file = tmp_path / "pid"
    process = RemoteProcess(
        ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
        target=target,
        pool=pool,
        timeout_s=60,
        kill_grace_s=1.0,
    )
    running = asyncio.create_task(process.run())
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10)
    command_pid = int(pid_file.read_text())

    server.drop_connections()
    result = await asyncio.wait_for(running, 30)
    assert result.outcome is Outcome.TRANSPORT_FAILED
    assert result.error is not None and result.error.endswith("the remote command was killed")
    await eventually(lambda: not alive(command_pid), timeout=5, what="the killed command gone")


async def test_a_silent_connection_is_found_dead_by_keepalives(
    sshd_factory: SshdFactory, pool: SshPool, tmp_path: Path
) -> None:
    server = sshd_factory()
    settings = server.settings(
        keepalive_interval_s=0.5, keepalive_count_max=2, connect_timeout_s=2.0
    )
    target = server.agent("hung", ["sh"], ssh=settings).ssh_target()
    assert target is not None
    pid_file = tmp_path / "pid"
    process = RemoteProcess(
        ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
        target=target,
        pool=pool,
        timeout_s=60,
    )
    running = asyncio.create_task(process.run())
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=10)
    command_pid = int(pid_file.read_text())
    frozen_at = time.monotonic()
    server.freeze()  # no FIN, no RST: the connection just goes quiet
    try:
        result = await asyncio.wait_for(running, 30)
    finally:
        server.freeze(False)
        with contextlib.suppress(ProcessLookupError):
            os.kill(command_pid, signal.SIGKILL)  # unreachable for the kill while frozen
    assert result.outcome is Outcome.TRANSPORT_FAILED
    assert result.error is not None and "lost while the command ran" in result.error
    assert time.monotonic() - frozen_at < 15  # keepalives, not the 60 s task timeout
    assert pool.host_pool(target).snapshot().evictions == 1
