"""A coordinator core on a real store, driven command by command as the service would."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import WhooshStore
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec


@dataclass
class Core:
    url: str
    store: WhooshStore
    projection: FleetProjection
    handler: CommandHandler
    assigner: Assigner

    def send(self, command: c.Command) -> c.CommandReply:
        reply = self.handler.handle(command)
        self.assigner.assign_pending()
        return reply

    def events(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def task(self, task_id: str | UUID):
        return self.projection.tasks[UUID(str(task_id))]

    def register(self, name: str, **spec) -> None:
        spec.setdefault("command", ["cat"])
        assert self.send(c.RegisterAgent(spec=AgentSpec(name=name, **spec))).accepted

    def submit(self, **fields) -> UUID:
        fields.setdefault("prompt", "hello")
        reply = self.send(c.SubmitTask(**fields))
        assert reply.accepted, reply.reason
        return UUID(reply.ids["task_id"])

    def run_to_end(self, task_id: UUID, ok: bool = True) -> c.CommandReply:
        attempt = self.task(task_id).attempt
        assert self.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t")).accepted
        if ok:
            return self.send(c.CompleteTask(task_id=task_id, attempt=attempt, output="done"))
        return self.send(
            c.FailTask(task_id=task_id, attempt=attempt, reason="exit code 1", stderr="oops\n")
        )
