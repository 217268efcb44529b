"""The monitor process: heartbeats in, health verdicts and re-queues out, on a tick.

Every tick it reads the coordinator's agents, sends the health verdicts that changed
(ReportAgentHealth: the coordinator records them as events and the scheduler stops or
resumes using the agent), and, while some agent is unhealthy or some executor dead,
fails the attempts stuck there after the grace period (FailTask, retryable) so they
run elsewhere. Probes of agents' servers run in their own loop. Nothing here decides:
`health`, `requeue` and `alert_rules` do, from what this module feeds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from uuid import UUID

import httpx
import nats.errors
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry, Counter
from whoosh_shared.contract import metric_names as m
from whoosh_shared.contract import subjects
from whoosh_shared.contract.budgets import BudgetList, ListBudgets
from whoosh_shared.contract.commands import (
    Command,
    CommandReply,
    FailTask,
    RaiseAlert,
    ReportAgentHealth,
    ResolveAlert,
)
from whoosh_shared.contract.config import WhooshConfig
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import (
    AgentList,
    AgentView,
    AlertList,
    EventPage,
    FleetStats,
    GetEvents,
    GetStats,
    GetTask,
    ListAgents,
    ListAlerts,
    ListTasks,
    TaskPage,
    TaskView,
)
from whoosh_shared.runtime.bus import Bus, BusError
from whoosh_shared.runtime.loop_reports import LOOP_REPORT_INTERVAL_S, publish_loop_reports
from whoosh_shared.runtime.reconnects import after_each_reconnect, last_relayed_id
from whoosh_shared.runtime.supervision import LoopHealth, supervise

from whoosh_monitor.agent_window import AgentWindow
from whoosh_monitor.alert_notices import AlertNotices
from whoosh_monitor.alert_rules import RuleEngine, Transition
from whoosh_monitor.event_metrics import EventMetrics
from whoosh_monitor.fleet_metrics import FleetCollector, FleetSnapshot
from whoosh_monitor.health import AgentInfo, FleetHealth, Verdict
from whoosh_monitor.heartbeat_intake import HeartbeatIntake
from whoosh_monitor.metrics_server import MetricsServer
from whoosh_monitor.probes import probe, probed
from whoosh_monitor.readings import collect
from whoosh_monitor.requeue import HeldTask, Requeuer
from whoosh_monitor.webhook import WebhookSender

log = logging.getLogger(__name__)

ACTOR = "monitor"
TICK_MAX_S = 0.5
ACTIVE_PAGE = 1000
MAX_UNSENT = 1000
REQUEUE_CHECK_MIN_S = 1.0


class MonitorService:
    def __init__(
        self,
        config: WhooshConfig,
        nats_url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings = config.monitoring
        self.nats_url = nats_url
        self.clock = clock
        self.bus = Bus(nats_url, "whoosh-monitor")
        self.health = FleetHealth(self.settings, clock)
        self.intake = HeartbeatIntake(self.health.heartbeat)
        self.requeuer = Requeuer(self.settings.requeue_grace_s, clock)
        self.agents: list[AgentView] = []
        self.budgets: dict[str, float] = {}  # scope -> share used, for the gauge
        self.stats: FleetStats | None = None
        self.registry = CollectorRegistry()
        self.fleet_metrics = FleetCollector()
        self.registry.register(self.fleet_metrics)
        self.window = AgentWindow(clock)
        self.events = EventMetrics(self.registry, self.window, self._agent_model, self._resolve)
        self.metrics = MetricsServer(
            self.registry,
            self.settings.metrics_host,
            self.settings.metrics_port,
            fd=self.settings.metrics_fd,
        )
        self.rules = RuleEngine(self.settings.rules(), clock)
        self._adopted = False
        self._unsent: list[Command] = []
        self.webhook_outcomes = Counter(
            m.WEBHOOK_DELIVERIES.removesuffix("_total"),
            "Alert notifications by how their delivery to the webhook ended",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook: WebhookSender | None = None
        self._stop = asyncio.Event()
        self.tick_s = min(TICK_MAX_S, self.settings.probe_every_s / 2)
        self._requeue_every_s = max(REQUEUE_CHECK_MIN_S, self.settings.requeue_grace_s / 5)
        self._requeue_checked = float("-inf")
        self._last_event_id = 0
        self.loop_health = LoopHealth()  # the supervised loops (self.health judges agents)
        self.process_name = f"monitor-{socket.gethostname()}-{os.getpid()}"

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self.metrics.start()  # first: a taken port is a start-up error, said at once
        await self.bus.connect()
        http = httpx.AsyncClient(timeout=self.settings.probe_within_s)
        try:
            await self.bus.nc.subscribe(subjects.HEARTBEAT_WILDCARD, cb=self._on_heartbeat)
            self._last_event_id = await last_relayed_id(self.bus.js)
            await self.bus.nc.subscribe(subjects.EVENTS_WILDCARD, cb=self._on_event)
            health = self.loop_health
            loops = [
                asyncio.create_task(supervise("judge", self._judge_loop, health)),
                asyncio.create_task(supervise("probe", lambda: self._probe_loop(http), health)),
                asyncio.create_task(supervise("alerts", self._alert_loop, health)),
                asyncio.create_task(
                    supervise(
                        "loop reports",
                        lambda: publish_loop_reports(
                            self.bus.nc, self.process_name, health, LOOP_REPORT_INTERVAL_S
                        ),
                        health,
                    )
                ),
                asyncio.create_task(
                    supervise(
                        "event catch-up",
                        lambda: after_each_reconnect(self.bus.nc, self._catch_up_events),
                        health,
                    )
                ),
            ]
            hook = self.settings.alert_webhook
            if hook is not None:
                hook_http = httpx.AsyncClient(timeout=hook.timeout_s)
                self.webhook = WebhookSender(
                    hook,
                    hook_http,
                    lambda outcome: self.webhook_outcomes.labels(outcome).inc(),
                )
                loops.append(asyncio.create_task(self.webhook.run(), name="webhook"))
                notices = AlertNotices(
                    self.bus.js,
                    hook,
                    self.webhook.deliver,
                    lambda outcome: self.webhook_outcomes.labels(outcome).inc(),
                    self.config.cluster.name,
                    own_actor=ACTOR,
                )
                loops.append(asyncio.create_task(supervise("alert notices", notices.run, health)))
            log.info(
                "monitor ready",
                extra={
                    "nats": self.nats_url,
                    "window_s": self.settings.health_check_interval,
                    "probe_every_s": self.settings.probe_every_s,
                    "metrics_url": self.metrics.url,
                    "alert_rules": len(self.rules.rules),
                },
            )
            await self._stop.wait()
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            await http.aclose()
            if self.webhook is not None:
                await self.webhook.http.aclose()
            await self.bus.close()
            self.metrics.stop()
            log.info("monitor stopped")

    # -- heartbeats ---------------------------------------------------------------------

    async def _on_heartbeat(self, msg: Msg) -> None:
        self.intake.handle(msg.subject, msg.data)

    # -- events -> metrics ----------------------------------------------------------------

    async def _on_event(self, msg: Msg) -> None:
        """Counted once: an event at or below the last one counted is a relay's overlap
        (or was read back while catching up after a reconnect)."""
        notification_id = int((msg.headers or {}).get(subjects.NOTIFICATION_ID_HEADER) or 0)
        if notification_id:
            if notification_id <= self._last_event_id:
                return
            self._last_event_id = notification_id
        try:
            await self.events.handle(msg.data)
        except Exception:
            log.exception("event not counted")
        # Alerts the coordinator raised itself reach the webhook through AlertNotices
        # (alert_notices.py): one monitor sends each, however many run.

    async def _catch_up_events(self) -> None:
        """After a NATS reconnect: the events relayed while this monitor was away, read
        from the store through the coordinator (a failure raises, and it is tried again)."""
        while True:
            reply = await self.bus.ask(GetEvents(after=self._last_event_id, limit=500))
            if reply.status != "ok" or reply.result is None:
                raise BusError(f"events not read: {reply.reason}")
            page = EventPage.model_validate(reply.result)
            for envelope in page.events:
                if envelope.notification_id > self._last_event_id:
                    self._last_event_id = envelope.notification_id
                    await self.events.handle(envelope.model_dump_json().encode())
            if page.next_cursor is None:
                return

    def _agent_model(self, agent: str) -> str | None:
        for view in self.agents:
            if view.spec.name == agent:
                return view.spec.model
        return None

    async def _resolve(self, task_id: UUID) -> tuple[str | None, str | None]:
        """Agent and model of a task this monitor did not follow from its start."""
        try:
            reply = await self.bus.ask(GetTask(task_id=task_id), timeout=self.tick_s * 4)
        except (BusError, nats.errors.Error):
            return None, None
        if reply.status != "ok" or reply.result is None:
            return None, None
        task = TaskView.model_validate(reply.result)
        return task.agent or (task.tried_agents[-1] if task.tried_agents else None), task.model

    # -- judging ------------------------------------------------------------------------

    async def _judge_loop(self) -> None:
        while True:
            try:
                await self.judge_once()
            except asyncio.CancelledError:
                raise
            except (BusError, nats.errors.Error) as exc:
                log.debug("coordinator not reachable this tick: %s", exc)
            except Exception:
                log.exception("monitor tick failed")
            await asyncio.sleep(self.tick_s)

    async def judge_once(self) -> None:
        await self._refresh_agents()
        for verdict in self.health.changes():
            await self._send_verdict(verdict)
        await self._requeue_stuck()
        self.fleet_metrics.snapshot = self._snapshot()

    # -- alerts -------------------------------------------------------------------------

    async def _alert_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.evaluation_interval_s)
            try:
                await self.evaluate_once()
            except asyncio.CancelledError:
                raise
            except (BusError, nats.errors.Error) as exc:
                log.debug("alerts not sent this round: %s", exc)
            except Exception:
                log.exception("alert evaluation failed")

    async def evaluate_once(self) -> None:
        if not self._adopted:
            await self._adopt_firing()
        if self.stats is None:
            return  # no word from the coordinator yet: nothing to judge against
        live = [s.beat for s in self.health.live_executors()]
        readings = collect(live, self.agents, self.window, self.stats)
        commands: list[Command] = self._unsent
        self._unsent = []
        commands.extend(self._command(t) for t in self.rules.evaluate(readings))
        for index, command in enumerate(commands):
            try:
                reply = await self.bus.send(command, timeout=self.tick_s * 4)
            except (BusError, nats.errors.Error):
                self._unsent = commands[index:][-MAX_UNSENT:]  # said again next round
                raise
            self._after_alert(command, reply)

    async def _adopt_firing(self) -> None:
        """Alerts a previous monitor left firing: resolved here if no longer true."""
        reply = await self.bus.ask(ListAlerts(status="firing", limit=1000), timeout=self.tick_s * 4)
        if reply.status != "ok" or reply.result is None:
            return
        for alert in AlertList.model_validate(reply.result).alerts:
            self.rules.adopt_firing(alert.rule, alert.labels)
        self._adopted = True

    def _command(self, transition: Transition) -> Command:
        rule = transition.rule
        if transition.kind == "raise":
            return RaiseAlert(
                rule=rule.name,
                labels=transition.labels,
                severity=rule.severity,
                summary=transition.text,
                value=transition.value,
                threshold=rule.threshold,
                actor=ACTOR,
            )
        return ResolveAlert(
            rule=rule.name, labels=transition.labels, reason=transition.text, actor=ACTOR
        )

    def _after_alert(self, command: Command, reply: CommandReply) -> None:
        if not reply.accepted:
            log.warning("alert not recorded: %s", reply.reason)
            return
        changed = reply.ids.get("raised") == "true" or reply.ids.get("resolved") == "true"
        if not changed:
            return  # another monitor said it first, or it was already so: no notification
        status = "firing" if isinstance(command, RaiseAlert) else "resolved"
        assert isinstance(command, RaiseAlert | ResolveAlert)
        log.log(
            logging.WARNING if status == "firing" else logging.INFO,
            f"alert {status}",
            extra={"alert": command.rule, "labels": command.labels},
        )
        if self.webhook is not None:
            self.webhook.submit(self._notification(command, status, reply))

    def _notification(
        self, command: RaiseAlert | ResolveAlert, status: str, reply: CommandReply
    ) -> dict[str, object]:
        alert: dict[str, object] = {
            "id": reply.ids.get("alert_id"),
            "rule": command.rule,
            "labels": command.labels,
        }
        if isinstance(command, RaiseAlert):
            alert |= {
                "severity": command.severity.value,
                "summary": command.summary,
                "value": command.value,
                "threshold": command.threshold,
            }
        else:
            alert["reason"] = command.reason
        return {"status": status, "cluster": self.config.cluster.name, "alert": alert}

    def _firing_counts(self) -> dict[tuple[str, str], int]:
        severities = {rule.name: rule.severity.value for rule in self.rules.rules}
        counts: dict[tuple[str, str], int] = {}
        for rule, _ in self.rules.firing():
            key = (rule, severities.get(rule, "warning"))
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _snapshot(self) -> FleetSnapshot:
        verdicts = self.health.verdicts()
        agents = self.window.agents()
        return FleetSnapshot(
            stats=self.stats,
            agents=tuple(self.agents),
            healthy={name: v.healthy for name, v in verdicts.items()},
            live=tuple(s.beat for s in self.health.live_executors()),
            failure_ratio={a: r for a in agents if (r := self.window.failure_ratio(a)) is not None},
            response_time={a: t for a in agents if (t := self.window.response_time(a)) is not None},
            alerts_firing=self._firing_counts(),
            heartbeats=self.intake.received,
            rejected=dict(self.intake.rejected),
            budgets=self.budgets,
        )

    async def _refresh_agents(self) -> None:
        reply = await self.bus.ask(ListAgents(with_env=True), timeout=self.tick_s * 4)
        if reply.status != "ok" or reply.result is None:
            return
        self.agents = AgentList.model_validate(reply.result).agents
        stats = await self.bus.ask(GetStats(), timeout=self.tick_s * 4)
        if stats.status == "ok" and stats.result is not None:
            self.stats = FleetStats.model_validate(stats.result)
        budgets = await self.bus.ask(ListBudgets(), timeout=self.tick_s * 4)
        if budgets.status == "ok" and budgets.result is not None:
            found = BudgetList.model_validate(budgets.result).budgets
            self.budgets = {b.scope: b.share_used for b in found}
        self.health.set_agents(
            AgentInfo(a.spec.name, a.spec.type, a.healthy, probed(a.spec)) for a in self.agents
        )

    async def _send_verdict(self, verdict: Verdict) -> None:
        command = ReportAgentHealth(
            name=verdict.agent, healthy=verdict.healthy, reason=verdict.reason, actor=ACTOR
        )
        reply = await self.bus.send(command, timeout=self.tick_s * 4)
        if reply.accepted:
            level = logging.INFO if verdict.healthy else logging.WARNING
            log.log(
                level,
                "agent healthy again" if verdict.healthy else "agent unhealthy",
                extra={"agent": verdict.agent, "reason": verdict.reason},
            )
        else:
            log.debug("health of %s not recorded: %s", verdict.agent, reply.reason)

    async def _requeue_stuck(self) -> None:
        unhealthy = self.health.unhealthy()
        dead = self.health.dead_executors()
        judge_unknown = self.health.listening_long_enough
        if not unhealthy and not dead and not judge_unknown:
            return
        now = self.clock()
        if now - self._requeue_checked < self._requeue_every_s:
            return
        self._requeue_checked = now
        tasks = await self._held_tasks()
        live = {s.executor_id for s in self.health.live_executors()}
        for due in self.requeuer.due(tasks, unhealthy, dead, live, judge_unknown):
            reason = f"re-queued by the monitor: {due.reason}"
            command = FailTask(
                task_id=due.task_id,
                attempt=due.attempt,
                reason=reason[:2000],
                retryable=True,
                actor=ACTOR,
            )
            reply = await self.bus.send(command, timeout=self.tick_s * 4)
            if reply.accepted:
                log.warning(
                    "task re-queued",
                    extra={"task_id": str(due.task_id), "attempt": due.attempt, "reason": reason},
                )
            else:
                log.debug("re-queue of %s refused: %s", due.task_id, reply.reason)

    async def _held_tasks(self) -> list[HeldTask]:
        held: list[HeldTask] = []
        for status in (TaskStatus.ASSIGNED, TaskStatus.RUNNING):
            reply = await self.bus.ask(
                ListTasks(status=status, limit=ACTIVE_PAGE), timeout=self.tick_s * 4
            )
            if reply.status != "ok" or reply.result is None:
                continue
            for task in TaskPage.model_validate(reply.result).tasks:
                held.append(
                    HeldTask(task.id, task.attempt, task.status, task.agent, task.executor_id)
                )
        return held

    # -- probes -------------------------------------------------------------------------

    async def _probe_loop(self, http: httpx.AsyncClient) -> None:
        while True:
            started = self.clock()
            with contextlib.suppress(Exception):
                await self.probe_once(http)
            elapsed = self.clock() - started
            await asyncio.sleep(max(0.05, self.settings.probe_every_s - elapsed))

    async def probe_once(self, http: httpx.AsyncClient) -> None:
        specs = [a.spec for a in self.agents if probed(a.spec)]
        timeout = self.settings.probe_within_s
        found = await asyncio.gather(*(probe(spec, http, timeout) for spec in specs))
        for spec, failure in zip(specs, found, strict=True):
            self.health.probe_result(spec.name, failure is None, failure)
