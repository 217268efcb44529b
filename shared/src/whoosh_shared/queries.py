"""Queries answered from the coordinator's projections, and the views they return."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field

from whoosh_shared import subjects
from whoosh_shared.agents import AgentName, AgentSpec, Strict
from whoosh_shared.commands import LlmOptions, Usage
from whoosh_shared.enums import TaskStatus


class Query(Strict):
    SUBJECT: ClassVar[str]


class GetTask(Query):
    SUBJECT: ClassVar[str] = subjects.query("task.get")
    task_id: UUID


class ListTasks(Query):
    SUBJECT: ClassVar[str] = subjects.query("task.list")
    status: TaskStatus | None = None
    agent: AgentName | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    after: str | None = Field(default=None, description="cursor from the previous page")


class ListAgents(Query):
    SUBJECT: ClassVar[str] = subjects.query("agent.list")


class GetAgent(Query):
    SUBJECT: ClassVar[str] = subjects.query("agent.get")
    name: AgentName


class GetStats(Query):
    SUBJECT: ClassVar[str] = subjects.query("stats")


class TaskView(Strict):
    id: UUID
    status: TaskStatus
    prompt: str
    priority: int
    capabilities: list[str]
    agent_type: str | None = None
    model: str | None = None
    pinned_agent: str | None = None
    timeout_s: float
    llm: LlmOptions | None = None
    max_attempts: int
    attempt: int = 0
    agent: str | None = None
    tried_agents: list[str] = Field(default_factory=list)
    executor_id: str | None = None
    submitted_at: datetime
    sequence: int = Field(description="notification id of the submission: the FIFO order")
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    not_before: datetime | None = None
    output: str = ""
    exit_code: int | None = None
    reason: str | None = None
    last_progress: str | None = None
    usage: Usage = Field(default_factory=Usage)
    version: int = 0


class AgentView(Strict):
    id: UUID
    spec: AgentSpec
    enabled: bool
    in_flight: list[UUID] = Field(default_factory=list)
    completed: int = 0
    failed: int = 0
    version: int = 0

    @property
    def load(self) -> int:
        return len(self.in_flight)


class TaskPage(Strict):
    tasks: list[TaskView]
    next_cursor: str | None = None


class AgentList(Strict):
    agents: list[AgentView]


class FleetStats(Strict):
    tasks_by_status: dict[str, int]
    agents: int
    agents_enabled: int
    in_flight: int
    position: int = Field(description="last notification id folded into the projections")


class QueryReply(Strict):
    status: Literal["ok", "error"]
    result: dict[str, Any] | None = None
    code: str | None = None
    reason: str | None = None

    @classmethod
    def ok(cls, result: Strict) -> QueryReply:
        return cls(status="ok", result=result.model_dump(mode="json"))

    @classmethod
    def error(cls, code: str, reason: str) -> QueryReply:
        return cls(status="error", code=code, reason=reason)
