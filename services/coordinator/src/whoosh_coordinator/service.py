"""The coordinator process: NATS wiring around the command handler, plus its loops.

Commands and queries arrive on wildcard subjects in a queue group, so several
coordinators share the load; they are handled one at a time, so the domain never
sees two commands interleaved within one process. Replies go out before scheduling: a background
pass places queued work right after, batching whatever arrived meanwhile. Other
writers' events (a second coordinator on the same PostgreSQL store) are picked
up from the notification log on a store-appended nudge or, at worst, a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from typing import Any

from eventsourcing.persistence import Recording
from nats.aio.msg import Msg
from whoosh_shared.contract import subjects
from whoosh_shared.contract.commands import Command, CommandReply, RejectCode
from whoosh_shared.contract.config import ConfigError, CoordinatorSettings
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.contract.queries import QueryReply
from whoosh_shared.contract.security_settings import SecuritySettings
from whoosh_shared.contract.stream_limits import StreamLimits
from whoosh_shared.contract.work import StoreAppended
from whoosh_shared.runtime.bus import Bus, ensure_streams
from whoosh_shared.runtime.store import describe_store
from whoosh_shared.runtime.supervision import LoopHealth, supervise

from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.dispatch import Dispatcher
from whoosh_coordinator.durability import StoreSync
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.relay import FollowerSource, Relay, StoreSource
from whoosh_coordinator.scheduling.fair_queue import FairShare, check_shares
from whoosh_coordinator.store import open_store
from whoosh_coordinator.threads import commands as thread_commands
from whoosh_coordinator.wal_checkpoints import checkpoint_in_background

log = logging.getLogger(__name__)


def reply_too_large(size: int, max_payload: int) -> str:
    return (
        f"the reply is {size} bytes, over NATS's max_payload of {max_payload} bytes; "
        "ask for less (a smaller page)"
    )


class Coordinator:
    def __init__(
        self,
        store_url: str,
        nats_url: str,
        settings: CoordinatorSettings,
        run_relay: bool = True,
        stream_replicas: int = 1,
        limits: LimitSettings | None = None,
        security: SecuritySettings | None = None,
        stream_limits: StreamLimits | None = None,
        store_sync: StoreSync = "normal",
    ) -> None:
        self.limits = limits or LimitSettings()
        self.health = LoopHealth()
        self.stream_limits = stream_limits
        self.store_url = store_url
        self.settings = settings
        self.stream_replicas = stream_replicas
        self.store = open_store(store_url, store_sync)
        self.projection = FleetProjection()
        self.follower = Follower(self.store, self.projection)
        # No echo: every save publishes a StoreAppended nudge, meant for other coordinators
        # and relays; nothing this process publishes is for its own subscriptions.
        self.bus = Bus(nats_url, "whoosh-coordinator", echo=False)
        self.handler = CommandHandler(
            self.store,
            self.projection,
            on_saved=self._on_saved,
            security=security,
            limits=self.limits,
        )
        self.queries = QueryHandler(
            self.projection, self.store, health=self.health, limits=self.limits
        )
        self.assigner = Assigner(
            self.handler, settings.timeout_grace_s, FairShare(settings.fair_share.shares)
        )
        self.handler.prices = dict(settings.prices)
        self.handler.default_escalation = [
            rule.model_dump(mode="json") for rule in settings.thread_escalation
        ]
        self.run_relay = run_relay
        self.relay: Relay | None = None
        self.dispatcher: Dispatcher | None = None
        self.kick = asyncio.Event()
        self._saved = False
        self.origin = f"coordinator-{uuid.uuid4().hex[:12]}"
        self._pending: list[tuple[Msg, Command]] = []
        self._flushing: set[asyncio.Task[None]] = set()
        # Fault injection for the crash tests only: kill -9 ourselves right after the N-th
        # committed save, i.e. between two stored transactions (0: never).
        self._kill_after_saves = int(os.environ.get("WHOOSH_FAULT_KILL_AFTER_SAVES", "0") or 0)
        self._saves = 0

    # -- wiring -----------------------------------------------------------------------

    async def _subscribe(self) -> None:
        """Plain nats-py callbacks on the broker's connection for the hot subjects: measured
        here, faststream's handler machinery (a NatsMessage parameter resolved per message)
        costs ~0.33 ms per message over a raw callback, and every task crosses these
        subjects several times."""
        nc = self.bus.nc
        queue = subjects.COORDINATOR_QUEUE
        await nc.subscribe(subjects.COMMAND_WILDCARD, queue=queue, cb=self._on_command)
        await nc.subscribe(subjects.QUERY_WILDCARD, queue=queue, cb=self._on_query)
        await nc.subscribe(subjects.STORE_APPENDED, cb=self._on_appended)
        await nc.subscribe(subjects.LOOPS_WILDCARD, cb=self._on_loop_report)

    async def _on_loop_report(self, msg: Msg) -> None:
        """Another process's loops that are down: named in GetStats (every coordinator)."""
        self.queries.remote_loops.take(msg.data)

    async def _on_command(self, msg: Msg) -> None:
        """Queue the command; the messages already buffered are decided as one group."""
        parsed = self.handler.parse(msg.subject, msg.data)
        if isinstance(parsed, CommandReply):
            await self._respond(msg, parsed)
            return
        self._pending.append((msg, parsed))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flushing.add(asyncio.create_task(self._flush()))

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        replies = self.handler.handle_batch([command for _, command in batch])
        await self._after_change()  # before the replies: what they cause comes after it
        for (msg, _), reply in zip(batch, replies, strict=True):
            await self._respond(msg, reply)
        self._flushing.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _respond(self, msg: Msg, reply: CommandReply) -> None:
        if msg.reply:
            body = reply.model_dump_json().encode()
            if len(body) > self.bus.nc.max_payload:
                body = (
                    CommandReply.reject(
                        RejectCode.TOO_LARGE, reply_too_large(len(body), self.bus.nc.max_payload)
                    )
                    .model_dump_json()
                    .encode()
                )
            await self._send_reply(msg, body)

    async def _on_query(self, msg: Msg) -> None:
        reply = self.answer_query(msg.subject, msg.data)
        if msg.reply:
            body = reply.model_dump_json().encode()
            if len(body) > self.bus.nc.max_payload:
                reason = reply_too_large(len(body), self.bus.nc.max_payload)
                body = QueryReply.error("too_large", reason).model_dump_json().encode()
            await self._send_reply(msg, body)

    def answer_query(self, subject: str, body: bytes) -> QueryReply:
        """A query's answer, as of every write another coordinator said it made. Writers
        nudge (StoreAppended) before they reply or relay, so what a client has seen
        accepted or published elsewhere is folded here before this coordinator answers:
        without it, a client that watched its task end on one coordinator could read the
        other's older budget or task (seen end to end: a budget four completions behind)."""
        self._fold_what_others_wrote()
        return self.queries.handle_raw(subject, body)

    def _fold_what_others_wrote(self, polled: bool = False) -> None:
        """Read the log when it may hold events this process did not save: another
        coordinator said so (StoreAppended), or a poll interval passed (a nudge can be
        lost). What this process saves is folded as it commits, so its own writes need no
        read of the log (that read was a quarter of the coordinator's CPU per task)."""
        others = polled or self.handler.store_heard > self.projection.position
        if others and self.follower.catch_up() and self.relay is not None:
            self.relay.wake.set()  # another writer's events: relay them now

    @staticmethod
    async def _send_reply(msg: Msg, body: bytes) -> None:
        """A reply that cannot be sent is logged, never raised into the subscription."""
        try:
            await msg.respond(body)
        except Exception as exc:
            log.error("reply on %s not sent: %s: %s", msg.subject, type(exc).__name__, exc)

    async def _on_appended(self, msg: Msg) -> None:
        """Another writer grew the log: fold it and see whether work can be placed."""
        with contextlib.suppress(ValueError):
            nudge = StoreAppended.model_validate_json(msg.data)
            if nudge.origin != self.origin:
                self.handler.heard_of(nudge.notification_id)  # see projection_budgets
                self.kick.set()

    def _on_saved(self, recordings: list[Recording[Any]]) -> None:
        self._saved = True
        if self._kill_after_saves:
            self._saves += 1
            if self._saves >= self._kill_after_saves:
                os.kill(os.getpid(), signal.SIGKILL)
        envelopes = self.follower.fold_saved(recordings)
        if self.dispatcher is not None:
            self.dispatcher.saved(envelopes)
        if self.relay is not None:
            self.relay.wake.set()

    async def _after_change(self) -> None:
        """Tell followers (relays, other coordinators) and our own scheduler: the log grew."""
        if not self._saved:
            return
        self._saved = False
        self.kick.set()
        nudge = StoreAppended(notification_id=self.projection.position, origin=self.origin)
        await self.bus.nc.publish(subjects.STORE_APPENDED, nudge.model_dump_json().encode())

    # -- loops ------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        self.health.up("scheduler")
        while True:
            polled = False
            try:
                await asyncio.wait_for(self.kick.wait(), self.settings.poll_interval_s)
            except TimeoutError:
                polled = True
            self.kick.clear()
            try:
                self._fold_what_others_wrote(polled)
                self.assigner.assign_pending()
                await self._after_change()
                self.health.up("scheduler")
            except Exception as exc:
                log.exception("scheduling pass failed")
                self.health.down("scheduler", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self.settings.poll_interval_s)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                if self.assigner.time_out_overdue() + thread_commands.sweep(self.handler):
                    await self._after_change()
                due = self.projection.workflows.due(self.handler.clock())
                if due and self.handler.workflows.wake_due(due):
                    await self._after_change()
                self.kick.set()  # retries whose backoff has passed become placeable
                self.health.up("sweep")
            except Exception as exc:
                log.exception("timeout sweep failed")
                self.health.down("sweep", f"{type(exc).__name__}: {exc}")

    def _check_fair_share(self) -> None:
        """A share for a key name no key has is a configuration error (exit 2), not a no-op."""
        names = (key.name for key in self.projection.api_keys.listed())
        try:
            check_shares(self.settings.fair_share.shares, names)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    async def run(self, stop: asyncio.Event) -> None:
        checkpoints = checkpoint_in_background(self.store)
        try:
            await self._run(stop)
        finally:
            if checkpoints is not None:
                checkpoints.stop()
            self.store.close()

    async def _run(self, stop: asyncio.Event) -> None:
        folded = self.follower.catch_up()
        self._check_fair_share()
        log.info(
            "coordinator started: store %s, %d events replayed, %d tasks, %d agents",
            describe_store(self.store_url),
            folded,
            len(self.projection.tasks),
            len(self.projection.agents),
        )
        await self.bus.connect()
        await ensure_streams(
            self.bus.js, self.stream_replicas, update=True, limits=self.stream_limits
        )
        self.dispatcher = Dispatcher(self.bus.js, FollowerSource(self.follower).work_item)
        await self._subscribe()
        loops = [
            asyncio.create_task(supervise("scheduler", self._schedule_loop, self.health)),
            asyncio.create_task(supervise("sweep", self._sweep_loop, self.health)),
        ]
        if self.run_relay:
            source = FollowerSource(self.follower)
            self.relay = Relay(
                source,
                self.bus.js,
                self.settings.poll_interval_s,
                dispatch=self.dispatcher,
                health=self.health,
                limits=self.limits,
                max_payload=self.bus.nc.max_payload,
            )
            loops.append(asyncio.create_task(supervise("relay", self.relay.run, self.health)))
        self.kick.set()
        try:
            await stop.wait()
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self.dispatcher.close()
            await self.bus.close()
            log.info("coordinator stopped")


async def run_relay_only(
    store_url: str,
    nats_url: str,
    poll_interval_s: float,
    stop: asyncio.Event,
    limits: LimitSettings | None = None,
) -> None:
    """A relay as its own process: follows the store, woken by nudges or its poll."""
    store = open_store(store_url)
    bus = Bus(nats_url, "whoosh-relay")
    await bus.connect()
    await ensure_streams(bus.js)
    health = LoopHealth()
    relay = Relay(
        StoreSource(store),
        bus.js,
        poll_interval_s,
        health=health,
        limits=limits,
        max_payload=bus.nc.max_payload,
    )

    async def on_appended(msg: Msg) -> None:
        relay.wake.set()

    await bus.nc.subscribe(subjects.STORE_APPENDED, cb=on_appended)
    task = asyncio.create_task(supervise("relay", relay.run, health))
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.close()
        store.close()


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
