"""asyncssh behind the pool: connection options from an agent's SSH settings, channel opens
translated into the pool's terms, and one pool per host for the whole executor.

Host keys are checked against known_hosts unless the agent says otherwise in so many
words (`insecure_skip_host_key_check`): an explicit known_hosts path is always passed,
so neither a missing file nor a `UserKnownHostsFile none` in someone's ~/.ssh/config
can turn checking off quietly. The user's ssh config is not read at all: what runs
where is what the agent's settings say.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncssh
from whoosh_shared.contract.agents import SshTarget
from whoosh_shared.contract.heartbeat import SshPoolReading

from whoosh_executor_cli.ssh_failures import (
    SshFailure,
    SshFailureCause,
    classify_connect_error,
    known_hosts_path,
)
from whoosh_executor_cli.ssh_pool import (
    Backoff,
    ChannelRefused,
    ConnectFailed,
    ConnectionGone,
    HostPool,
    Lease,
)

log = logging.getLogger(__name__)

Connection = asyncssh.SSHClientConnection
SessionFactory = Callable[[], asyncssh.SSHClientSession[bytes]]

# Handshakes in flight across all hosts (each host also has its own, smaller bound).
MAX_HANDSHAKES_TOTAL = 8
MAX_HANDSHAKES_PER_HOST = 2


def connect_options(target: SshTarget) -> dict[str, Any]:
    """Keyword arguments for `asyncssh.connect` that say exactly what the settings say."""
    settings = target.settings
    known_hosts: str | bytes | None = known_hosts_path(target)
    if known_hosts is not None and not os.path.exists(known_hosts):
        known_hosts = b""  # nothing is trusted: the host key check fails, and says so
    options: dict[str, Any] = {
        "port": target.port,
        "known_hosts": known_hosts,
        "config": None,
        "connect_timeout": settings.connect_timeout_s,
        "login_timeout": settings.connect_timeout_s,
        "keepalive_interval": settings.keepalive_interval_s,
        "keepalive_count_max": settings.keepalive_count_max,
    }
    if target.user:
        options["username"] = target.user
    if settings.identity_file:
        options["client_keys"] = [os.path.expanduser(settings.identity_file)]
        options["agent_path"] = None  # the named key, not whatever an agent offers first
    return options


async def connect(target: SshTarget) -> Connection:
    """One connection to `target`; failures raised as SshFailure with their cause."""
    try:
        return await asyncssh.connect(target.host, **connect_options(target))
    except Exception as exc:
        raise classify_connect_error(exc, target) from exc


class AsyncsshConnector:
    """The pool's connector for one target."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target

    async def connect(self) -> Connection:
        conn = await connect(self.target)
        log.info("ssh connection open", extra={"host": self.target.label})
        return conn

    def close(self, conn: Connection) -> None:
        conn.close()

    async def wait_closed(self, conn: Connection) -> None:
        await conn.wait_closed()


def session_opener(factory: SessionFactory, command: str) -> Callable[[Connection], Any]:
    """An opener for the pool: a session channel running `command`, refusals told apart."""

    async def open_session(
        conn: Connection,
    ) -> tuple[asyncssh.SSHClientChannel[bytes], asyncssh.SSHClientSession[bytes]]:
        try:
            return await conn.create_session(factory, command, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            if conn.is_closed():
                raise ConnectionGone(exc.reason) from exc
            if exc.code == asyncssh.OPEN_REQUEST_SESSION_FAILED:
                raise SshFailure(
                    SshFailureCause.SSH_ERROR,
                    f"ssh: the server refused to run the command: {exc.reason}",
                ) from exc
            # OpenSSH answers an open beyond MaxSessions with "open failed".
            raise ChannelRefused(exc.reason) from exc
        except (asyncssh.DisconnectError, asyncssh.ConnectionLost, OSError) as exc:
            raise ConnectionGone(str(exc)) from exc

    return open_session


@dataclass
class RemoteChannel:
    """A running session channel and the lease that holds its slot."""

    lease: Lease[Connection]
    channel: asyncssh.SSHClientChannel[bytes]
    session: asyncssh.SSHClientSession[bytes]


class SshPool:
    """Every host this executor talks to: one HostPool per distinct target and settings."""

    def __init__(self, backoff: Backoff | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._hosts: dict[str, HostPool[Connection]] = {}
        self._handshakes = asyncio.Semaphore(MAX_HANDSHAKES_TOTAL)
        self._agent_slots: dict[tuple[str, int], asyncio.Semaphore] = {}

    def host_pool(self, target: SshTarget) -> HostPool[Connection]:
        key = target.model_dump_json()
        pool = self._hosts.get(key)
        if pool is None:
            pool = HostPool(
                AsyncsshConnector(target),
                channels_per_connection=target.settings.channels_per_connection,
                max_connections=target.settings.max_connections,
                max_handshakes=MAX_HANDSHAKES_PER_HOST,
                backoff=self.backoff,
                handshake_gate=self._handshakes,
                name=target.label,
            )
            self._hosts[key] = pool
        return pool

    def readings(self) -> list[SshPoolReading]:
        """SSH channels in use per host against what the pool may open there: carried in
        heartbeats for the monitor's pool-saturation alert."""
        return [
            SshPoolReading(
                target=pool.name or "ssh",
                in_use=sum(pool.snapshot().in_use),
                capacity=pool.max_connections * pool.channels_per_connection,
            )
            for pool in self._hosts.values()
        ]

    @contextlib.asynccontextmanager
    async def agent_slot(self, agent: str, limit: int) -> AsyncIterator[None]:
        """At most the agent's max_concurrent runs at once from this executor, whatever
        the coordinator believes (a redelivered copy, a changed limit)."""
        slots = self._agent_slots.setdefault((agent, limit), asyncio.Semaphore(limit))
        async with slots:
            yield

    async def open_session(
        self,
        target: SshTarget,
        factory: SessionFactory,
        command: str,
        *,
        urgent: bool = False,
    ) -> RemoteChannel:
        """Open a session running `command` on a pooled connection (SshFailure if none)."""
        pool = self.host_pool(target)
        try:
            lease, (channel, session) = await pool.open(
                session_opener(factory, command), urgent=urgent
            )
        except ConnectFailed as exc:
            raise classify_connect_error(exc.cause, target) from exc
        return RemoteChannel(lease, channel, session)

    async def run_short(
        self, target: SshTarget, command: str, timeout_s: float
    ) -> asyncssh.SSHCompletedProcess:
        """Run a short command (a kill) now, even when every pooled channel is taken: on a
        pooled connection regardless of its load, else on a connection of its own."""
        pool = self.host_pool(target)

        async def run_on(conn: Connection) -> asyncssh.SSHCompletedProcess:
            try:
                return await conn.run(command, check=False, timeout=timeout_s)
            except asyncssh.ChannelOpenError as exc:
                if conn.is_closed():
                    raise ConnectionGone(exc.reason) from exc
                raise ChannelRefused(exc.reason) from exc
            except (asyncssh.DisconnectError, asyncssh.ConnectionLost) as exc:
                raise ConnectionGone(str(exc)) from exc

        try:
            lease, result = await pool.open(run_on, urgent=True)
        except ConnectFailed:
            pass
        else:
            lease.release()
            return result
        async with asyncio.timeout(target.settings.connect_timeout_s + timeout_s):
            conn = await connect(target)
            try:
                return await conn.run(command, check=False, timeout=timeout_s)
            finally:
                conn.close()

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self._hosts.values()))
        self._hosts.clear()
