"""Usage per submitting key, agent and model, folded from task events (see
whoosh_shared.contract.usage). A task counts once, at its end; the usage of a cancelled or
timed-out task arrives afterwards in TaskOutputKept and is added to the same rows.
Agent time is the reported duration, or (CLI agents report none) the time from the last
attempt's start to the task's end, both from stored events so that a replay agrees."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from whoosh_shared.contract import events as ev
from whoosh_shared.contract.commands import Usage
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.usage import UsageReport, UsageRow, UsageTotals

ENDED_KEPT = 10_000  # ended tasks remembered for a late TaskOutputKept
NO_MODEL = "(agent default)"


@dataclass
class _Task:
    actor: str
    model: str
    agent: str = "(never assigned)"
    started: datetime | None = None


class UsageProjection:
    def __init__(self) -> None:
        self.total = UsageTotals()
        self.rows: dict[str, dict[str, UsageTotals]] = {"key": {}, "agent": {}, "model": {}}
        self.since: datetime | None = None
        self._open: dict[UUID, _Task] = {}
        self._ended: OrderedDict[UUID, _Task] = OrderedDict()

    def apply(self, envelope: EventEnvelope, payload: object) -> None:
        task_id = envelope.aggregate_id
        match payload:
            case ev.TaskSubmitted(actor=actor, model=model):
                self._open[task_id] = _Task(actor, model or NO_MODEL)
            case ev.TaskAssigned(agent_name=agent) if task_id in self._open:
                self._open[task_id].agent = agent
            case ev.TaskStarted() if task_id in self._open:
                self._open[task_id].started = envelope.timestamp
            case ev.TaskCompleted(usage=usage) | ev.TaskFailed(usage=usage):
                self._end(task_id, envelope, usage)
            case ev.TaskCancelled() | ev.TaskTimedOut() | ev.TaskSkipped():
                self._end(task_id, envelope, None)
            case ev.TaskOutputKept(usage=usage):
                task = self._ended.get(task_id) or self._open.get(task_id)
                if task is not None:
                    self._add(task, usage, count=0)

    def _end(self, task_id: UUID, envelope: EventEnvelope, usage: Usage | None) -> None:
        task = self._open.pop(task_id, None)
        if task is None:
            return
        if self.since is None:
            self.since = envelope.timestamp
        usage = usage or Usage()
        if not usage.duration_s and task.started is not None:
            # CLI agents report no duration: the last attempt's start to the end stands in
            seconds = max((envelope.timestamp - task.started).total_seconds(), 0.0)
            usage = usage.model_copy(update={"duration_s": seconds})
        self._add(task, usage, count=1)
        self._ended[task_id] = task
        while len(self._ended) > ENDED_KEPT:
            self._ended.popitem(last=False)

    def _add(self, task: _Task, usage: Usage, count: int) -> None:
        names = {"key": task.actor, "agent": task.agent, "model": task.model}
        targets = [self.total, *(self._row(kind, name) for kind, name in names.items())]
        for totals in targets:
            totals.tasks += count
            totals.tokens_in += usage.tokens_in
            totals.tokens_out += usage.tokens_out
            totals.cost_usd += usage.cost_usd
            totals.duration_s += usage.duration_s

    def _row(self, kind: str, name: str) -> UsageTotals:
        return self.rows[kind].setdefault(name, UsageTotals())

    def report(self) -> UsageReport:
        def listed(kind: str) -> list[UsageRow]:
            rows = [UsageRow(name=n, **t.model_dump()) for n, t in self.rows[kind].items()]
            return sorted(rows, key=lambda r: (-(r.tokens_in + r.tokens_out), -r.tasks, r.name))

        return UsageReport(
            since=self.since,
            total=self.total.model_copy(),
            by_key=listed("key"),
            by_agent=listed("agent"),
            by_model=listed("model"),
        )
