"""The fleet over NATS: commands and queries straight to the coordinator, no API key.

For operators on the cluster's own network (`--nats URL`) and for installations that run
no gateway; everyone else goes through the gateway (fleet_gateway)."""

from __future__ import annotations

from uuid import UUID

from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.blobs import needs_ref
from whoosh_shared.contract.commands import CommandReply, SubmitTask
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.explain import ExplainTask, TaskExplanation
from whoosh_shared.contract.gpu_readings import Gpu
from whoosh_shared.contract.limits import LimitSettings, preview
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
from whoosh_shared.runtime.blob_store import BlobStore
from whoosh_shared.runtime.bus import Bus

from whoosh_cli.agent_sync import register_tested
from whoosh_cli.bus_session import ask, send
from whoosh_cli.errors import CliError, UnreachableError
from whoosh_cli.fleet import WriteResult
from whoosh_cli.submit_retry import with_retries
from whoosh_cli.task_outcome import Outcome
from whoosh_cli.task_watch import TaskWatch

ACTOR = "cli"


class BusFleet:
    def __init__(self, bus: Bus, url: str, limits: LimitSettings | None = None) -> None:
        self.bus = bus
        self.where = url
        self.limits = limits or LimitSettings()

    async def _by_reference(self, command: SubmitTask) -> SubmitTask:
        """A prompt over limits.inline_bytes goes to the blob store; the command carries
        its reference (the coordinator refuses large inline prompts)."""
        if command.prompt_ref is not None or not needs_ref(
            command.prompt, self.limits.inline_bytes
        ):
            return command
        ref = await BlobStore(self.bus.js).put_text(command.prompt)
        return command.model_copy(update={"prompt": preview(command.prompt), "prompt_ref": ref})

    async def agents(self) -> list[AgentView]:
        return (await ask(self.bus, ListAgents(), AgentList)).agents

    async def register(self, spec: AgentSpec) -> WriteResult:
        """After the executor's connectivity test (remote CLI agents), as `whoosh up` does."""
        return _result(await register_tested(self.bus, spec, actor=ACTOR))

    async def set_enabled(self, name: str, enabled: bool) -> WriteResult:
        command = c.EnableAgent if enabled else c.DisableAgent
        return _result(await send(self.bus, command(name=name, actor=ACTOR)))

    async def set_weight(self, name: str, weight: int) -> WriteResult:
        return _result(
            await send(self.bus, c.SetAgentWeight(name=name, weight=weight, actor=ACTOR))
        )

    async def remove(self, name: str) -> WriteResult:
        return _result(await send(self.bus, c.RemoveAgent(name=name, actor=ACTOR)))

    async def submit(self, command: SubmitTask) -> WriteResult:
        return _result(await self._send_submit(command))

    async def _send_submit(self, command: SubmitTask) -> CommandReply:
        """Sent again with the same idempotency key while no coordinator answers."""
        command = await self._by_reference(command)
        if command.idempotency_key is None:
            return await send(self.bus, command)
        return await with_retries(
            lambda: send(self.bus, command), lambda e: isinstance(e, UnreachableError), "submit"
        )

    async def submit_and_follow(
        self, command: SubmitTask, live_output: bool, verbose: bool = False
    ) -> Outcome:
        watch = TaskWatch(self.bus, live_output=live_output, verbose=verbose)
        await watch.subscribe_all()
        try:
            reply = await self._send_submit(command)
            if not reply.accepted:
                raise CliError(f"task rejected ({reply.code}): {reply.reason}")
            await watch.focus(UUID(reply.ids["task_id"]))
            return await watch.follow()
        finally:
            await watch.close()

    async def follow(self, task_id: UUID, live_output: bool, verbose: bool = False) -> Outcome:
        await self.task(task_id)  # an unknown id is refused here, not watched for ever
        watch = TaskWatch(self.bus, live_output=live_output, verbose=verbose)
        try:
            await watch.focus(task_id)
            return await watch.follow()
        finally:
            await watch.close()

    async def task(self, task_id: UUID) -> TaskView:
        return await ask(self.bus, GetTask(task_id=task_id), TaskView)

    async def explain(self, task_id: UUID) -> TaskExplanation:
        return await ask(self.bus, ExplainTask(task_id=task_id), TaskExplanation)

    async def tasks(self, query: ListTasks) -> TaskPage:
        return await ask(self.bus, query, TaskPage)

    async def cancel(self, task_id: UUID, reason: str) -> WriteResult:
        command = c.CancelTask(task_id=task_id, reason=reason, actor=ACTOR)
        return _result(await send(self.bus, command))

    async def events(self, task_id: UUID) -> list[EventEnvelope]:
        await self.task(task_id)  # not_found for an unknown task
        found: list[EventEnvelope] = []
        after = 0
        while True:
            page = await ask(self.bus, GetEvents(aggregate_id=task_id, after=after), EventPage)
            found += page.events
            if page.next_cursor is None:
                return found
            after = page.next_cursor

    async def stats(self) -> FleetStats:
        return await ask(self.bus, GetStats(), FleetStats)

    async def alerts(self, query: ListAlerts) -> AlertList:
        return await ask(self.bus, query, AlertList)

    async def gpus(self) -> list[Gpu]:
        """Over NATS there is no monitor endpoint to read: `whoosh top` shows none."""
        return []


def _result(reply: CommandReply) -> WriteResult:
    return WriteResult(reply.accepted, reply.ids, reply.code, reply.reason)
