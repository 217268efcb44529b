"""Bus adapter: a faststream NatsBroker plus the few typed calls every service makes.

Services declare subscribers on `Bus.broker` (faststream's typed handlers);
commands and queries go out through `send` / `ask`, which turn "nobody is
listening" and timeouts into one clear error instead of a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, TypeVar

import nats.errors
from faststream.nats import NatsBroker
from faststream.nats.security import (
    NatsCredentials,
    NatsNKey,
    NatsSecurity,
    NatsToken,
    NatsUserPassword,
)
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from pydantic import BaseModel

from whoosh_shared.contract import subjects
from whoosh_shared.contract.commands import AttemptCommand, Command, CommandReply, RejectCode
from whoosh_shared.contract.queries import GetStats, Query, QueryReply
from whoosh_shared.contract.stream_limits import StreamLimits
from whoosh_shared.runtime import nats_auth

log = logging.getLogger(__name__)
ReplyT = TypeVar("ReplyT", bound=BaseModel)

DUPLICATE_WINDOW_S = 120.0
REPORT_RETRY_FIRST_S = 0.25
REPORT_RETRY_MAX_S = 5.0
# A report's request waits this long for its first answer, twice as long for each next
# one, up to the max. Short at first because a report sent to a coordinator that then
# died is answered by nobody: waiting out 10 s held a workflow 10 s after a coordinator
# restart of 3 s. Resending is safe: the coordinator decides by attempt, and a copy of a
# report it already took is refused (bad_state) with nothing written.
REPORT_TIMEOUT_FIRST_S = 2.0
REPORT_TIMEOUT_MAX_S = 10.0
# How long a stopping service waits for its subscribers and the connection to drain.
CLOSE_TIMEOUT_S = 6.0


class BusError(RuntimeError):
    """The bus could not deliver a request or bring back its answer."""


def make_broker(
    url: str, name: str, options: dict[str, Any] | None = None, echo: bool = True
) -> NatsBroker:
    """A broker with faststream's per-message logging off (it costs ~40 % on hot paths).

    `url` may list several servers of a cluster, comma-separated; `options` are the
    credentials and TLS (whoosh_shared.runtime.nats_auth), by default the process's own.
    `echo=False`: the server does not deliver this connection's own publishes back to
    its subscriptions."""
    return NatsBroker(
        [server.strip() for server in url.split(",") if server.strip()],
        name=name,
        security=broker_security(nats_auth.current() if options is None else options),
        logger=None,
        connect_timeout=2,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        graceful_timeout=5.0,
        drain_timeout=5,
        no_echo=not echo,
    )


def broker_security(options: dict[str, Any]) -> NatsSecurity | None:
    """nats_auth's connect options as faststream's security object."""
    tls = {"ssl_context": options["tls"]} if options.get("tls") else {}
    if "user" in options:
        return NatsUserPassword(options["user"], options.get("password", ""), **tls)
    if "token" in options:
        return NatsToken(options["token"], **tls)
    if "user_credentials" in options:
        return NatsCredentials(options["user_credentials"], **tls)
    if "nkeys_seed" in options:
        return NatsNKey(options["nkeys_seed"], **tls)
    return NatsSecurity(**tls) if tls else None


def stream_configs(replicas: int = 1, limits: StreamLimits | None = None) -> list[StreamConfig]:
    """The two JetStream streams: the event log and the per-agent work queues.

    On a NATS cluster, `replicas` (nats.stream_replicas) should be 3 so that losing one
    node loses neither events nor queued work. `limits`: nats.streams (bytes, age)."""
    limits = limits or StreamLimits()
    return [
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=[subjects.EVENTS_WILDCARD],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=limits.events_max_age_s,
            max_bytes=limits.events_max_bytes,
            duplicate_window=DUPLICATE_WINDOW_S,
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=subjects.WORK_STREAM,
            subjects=[subjects.WORK_WILDCARD],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            max_bytes=limits.work_max_bytes,
            discard=DiscardPolicy.NEW,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
        ),
    ]


async def ensure_streams(
    js: JetStreamContext,
    replicas: int = 1,
    update: bool = False,
    limits: StreamLimits | None = None,
) -> None:
    """Create missing streams. Only the coordinator, which owns the streams' settings,
    passes `update` to bring existing ones in line; other services never change them."""
    for config in stream_configs(replicas, limits):
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            continue
        if update:
            await js.update_stream(config)


class Bus:
    """One service's connection: a faststream broker and typed request helpers."""

    def __init__(
        self, url: str, name: str, options: dict[str, Any] | None = None, echo: bool = True
    ) -> None:
        self.url = url
        self.broker = make_broker(url, name, options, echo)

    @property
    def nc(self) -> Client:
        return self.broker.connection

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    async def connect(self, timeout: float = 10.0) -> None:
        """First connection is bounded (reconnects after that are not): fail fast and clearly."""
        try:
            await asyncio.wait_for(self.broker.connect(), timeout)
        except TimeoutError:
            await self._abandon()
            raise BusError(f"cannot connect to NATS at {self.url} within {timeout:g}s") from None
        except (OSError, nats.errors.Error) as exc:
            await self._abandon()
            raise BusError(f"cannot connect to NATS at {self.url}: {exc}") from exc

    async def _abandon(self) -> None:
        with contextlib.suppress(Exception):
            await self.broker.stop()

    async def start(self) -> None:
        """Connect and start the subscribers declared on the broker."""
        await self.connect()
        await self.broker.start()

    async def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Stop the subscribers and drain the connection, within `timeout`; then close hard.

        Draining needs the server: when it is gone (a kill -9 of `whoosh up` takes NATS
        down with every service) nats-py refuses to drain while reconnecting, or waits out
        its drain and flush timeouts one after another, and the process outlives its stop.
        What was not drained is unacked work, which JetStream redelivers."""
        connection = self.broker._connection
        try:
            await asyncio.wait_for(self.broker.stop(), timeout)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            log.info("NATS connection closed without draining: %s", type(exc).__name__)
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def send(self, command: Command, timeout: float = 10.0) -> CommandReply:
        return await self._request(command.SUBJECT, command, CommandReply, timeout)

    async def ask(self, query: Query, timeout: float = 10.0) -> QueryReply:
        return await self._request(query.SUBJECT, query, QueryReply, timeout)

    async def coordinator_answers(self, timeout: float = 1.0) -> bool:
        """Whether a coordinator answers queries now (it has replayed its store and listens)."""
        try:
            return (await self.ask(GetStats(), timeout)).status == "ok"
        except BusError:
            return False

    async def _request(
        self, subject: str, message: BaseModel, reply_model: type[ReplyT], timeout: float
    ) -> ReplyT:
        try:
            msg = await self.nc.request(subject, message.model_dump_json().encode(), timeout)
        except nats.errors.NoRespondersError:
            raise BusError(f"no coordinator is answering on {subject} (is it running?)") from None
        except nats.errors.TimeoutError:
            raise BusError(f"no answer on {subject} within {timeout:g}s") from None
        except nats.errors.Error as exc:  # connection closed, draining, ...
            raise BusError(f"request on {subject} failed: {exc!r}") from None
        return reply_model.model_validate_json(msg.data)


async def send_until_answered(
    bus: Bus, command: AttemptCommand, give_up: asyncio.Event
) -> CommandReply | None:
    """Send `command` until the coordinator answers; None if `give_up` is set first.

    For an executor's reports, which must not be lost: the work message stays unacked
    until this returns an answer. `give_up` is the executor's shutdown deadline: an
    unanswered report then stays unacked and the work is redelivered, which is safe
    (the coordinator answers the redelivered start by attempt) where a lost report
    would not be.
    """
    delay, timeout = REPORT_RETRY_FIRST_S, REPORT_TIMEOUT_FIRST_S
    while not give_up.is_set():
        sending = asyncio.create_task(bus.send(command, timeout))
        stopping = asyncio.create_task(give_up.wait())
        await asyncio.wait({sending, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not sending.done():
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            return None
        try:
            reply = sending.result()
        except (BusError, nats.errors.Error) as exc:  # the latter: connection closed/draining
            timeout = min(timeout * 2, REPORT_TIMEOUT_MAX_S)
            log.warning(
                "report not delivered, retrying in %.1fs: %s",
                delay,
                exc,
                extra={"task_id": str(command.task_id), "attempt": command.attempt},
            )
        else:
            if reply.code != RejectCode.CONFLICT.value:
                return reply
            # Not a verdict: the coordinator lost optimistic-concurrency races to another
            # coordinator too often. Acking on it would lose the report.
            log.warning(
                "report kept conflicting with other coordinators, retrying in %.1fs",
                delay,
                extra={"task_id": str(command.task_id), "attempt": command.attempt},
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(give_up.wait(), timeout=delay)
        delay = min(delay * 2, REPORT_RETRY_MAX_S)
    return None
