"""What the MCP tools return: structured output (each model is a tool's output schema).

Smaller than the REST views on purpose: a model's context is the scarce resource, so
results carry what a caller acts on, output as a tail with a truncation flag, and never
an agent's secrets (env, SSH settings, command line).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field
from whoosh_shared.contract.commands import Usage
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import AgentView, TaskView

from whoosh_gateway.api_models import AgentStatus, agent_status


class Skill(BaseModel):
    """One capability, shaped like an A2A AgentSkill (id = capability name)."""

    id: str
    proficiency: float = Field(description="0..1, as configured")


class AgentSummary(BaseModel):
    name: str
    type: str
    display_name: str | None = None
    model: str | None = None
    specialization: str | None = None
    skills: list[Skill] = Field(description="its capabilities")
    status: AgentStatus
    enabled: bool
    healthy: bool
    reachable: bool
    active_tasks: int
    capacity: int
    weight: int = Field(description="traffic weight 0..100 (0: draining)")
    completed: int
    failed: int
    remote_host: str | None = Field(default=None, description="SSH host of a remote CLI agent")


def agent_summary(agent: AgentView) -> AgentSummary:
    spec = agent.spec
    return AgentSummary(
        name=spec.name,
        type=spec.type.value,
        display_name=spec.display_name,
        model=spec.model,
        specialization=spec.specialization,
        skills=[Skill(id=name, proficiency=p) for name, p in sorted(spec.capabilities.items())],
        status=agent_status(agent),
        enabled=agent.enabled,
        healthy=agent.healthy,
        reachable=agent.reachable,
        active_tasks=agent.load,
        capacity=spec.max_concurrent,
        weight=spec.weight,
        completed=agent.completed,
        failed=agent.failed,
        remote_host=spec.host,
    )


class AgentListResult(BaseModel):
    agents: list[AgentSummary]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for more")


class Candidate(BaseModel):
    name: str
    rank: int | None = Field(default=None, description="1 = the scheduler's first choice")
    eligible: bool
    free_slots: int
    reason: str | None = Field(default=None, description="why it cannot run it (or not now)")
    weight: int = Field(description="traffic weight 0..100")
    estimate_s: float | None = Field(default=None, description="estimated seconds (LLM agents)")
    warm: bool | None = Field(default=None, description="model loaded; None: unknown")


class FindAgentsResult(BaseModel):
    eligible: list[Candidate] = Field(description="best first")
    not_eligible: list[Candidate]
    chosen: str | None = Field(default=None, description="where the scheduler would put it now")
    summary: str = Field(description="who would take it and what decides, or why it would wait")


class TaskSummary(BaseModel):
    task_id: UUID
    status: TaskStatus
    finished: bool = Field(description="the task reached an end (completed, failed, ...)")
    agent: str | None = None
    attempt: int
    max_attempts: int
    priority: int
    capabilities: list[str]
    submitted_by: str
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    stderr: str = Field(default="", description="the end of a CLI command's stderr (bounded)")
    last_progress: str | None = Field(default=None, description="the latest output line")
    usage: Usage
    output_tail: str = Field(description="the end of the output")
    output_chars: int = Field(description="length of the whole output")
    truncated: bool = Field(
        description="output_tail is not all of it: read whoosh://tasks/{task_id}/output"
    )


def tail(text: str, max_bytes: int) -> tuple[str, bool]:
    """The last `max_bytes` of `text` (UTF-8), cut at a character boundary."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    return data[-max_bytes:].decode(errors="ignore"), True


def task_summary(view: TaskView, tail_bytes: int) -> TaskSummary:
    output_tail, truncated = tail(view.output, tail_bytes)
    return TaskSummary(
        task_id=view.id,
        status=view.status,
        finished=view.status.terminal,
        agent=view.agent,
        attempt=view.attempt,
        max_attempts=view.max_attempts,
        priority=view.priority,
        capabilities=view.capabilities,
        submitted_by=view.submitted_by,
        submitted_at=view.submitted_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
        exit_code=view.exit_code,
        reason=view.reason,
        stderr=view.stderr,
        last_progress=view.last_progress,
        usage=view.usage,
        output_tail=output_tail,
        output_chars=len(view.output),
        truncated=truncated,
    )


class WaitResult(BaseModel):
    task: TaskSummary
    waited_s: float
    ended: bool = Field(description="false: the wait timed out; the task goes on (wait again)")


class TaskListItem(BaseModel):
    task_id: UUID
    status: TaskStatus
    agent: str | None = None
    priority: int
    capabilities: list[str]
    prompt_head: str = Field(description="the first 200 characters of the prompt")
    submitted_at: datetime
    finished_at: datetime | None = None


class TaskListResult(BaseModel):
    tasks: list[TaskListItem]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for more")


class EventItem(BaseModel):
    event_id: int = Field(description="pass the last one as `after` for more")
    type: str
    timestamp: datetime
    actor: str | None = None
    data: dict[str, object]


class EventsResult(BaseModel):
    task_id: UUID
    events: list[EventItem]
    next_cursor: int | None = None


class ClusterStatus(BaseModel):
    agents: int
    agents_enabled: int
    agents_by_status: dict[str, int]
    tasks_by_status: dict[str, int]
    in_flight: int


class Submitted(BaseModel):
    task_id: UUID
    replayed: bool = Field(description="idempotency_key had already created this task")
    task: TaskSummary | None = Field(default=None, description="its state after wait_s")
    ended: bool = False


class AgentWriteResult(BaseModel):
    agent: AgentSummary
    connectivity: Literal["ok", "not_tested"] = "not_tested"
