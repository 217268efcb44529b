"""Request and response bodies of the REST API that are not the shared contract's own.

Reads return the coordinator's views (TaskView, AgentView, ...) as they are; these are
the bodies the gateway adds: submissions without the fields only the gateway may set,
pages, and the answers to writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field
from whoosh_shared.contract.agents import AgentName, AgentSpec, CapabilityName, Strict
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.commands import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    MAX_PROMPT_CHARS,
    MIN_PRIORITY,
    LlmOptions,
    RetryPolicy,
    Usage,
)
from whoosh_shared.contract.enums import AgentType, TaskStatus
from whoosh_shared.contract.queries import AgentView, TaskView

AgentStatus = Literal["idle", "busy", "full", "disabled", "unhealthy", "unreachable"]


class TaskSubmission(Strict):
    """A task to run: SubmitTask without `actor` and limits, which come from the key."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    priority: int = Field(default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    capabilities: list[CapabilityName] = Field(default_factory=list, max_length=100)
    agent_type: AgentType | None = None
    model: str | None = Field(default=None, max_length=200)
    agent: AgentName | None = Field(default=None, description="pin the task to one agent")
    timeout_s: float = Field(default=600.0, gt=0, le=7 * 24 * 3600)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    llm: LlmOptions | None = None
    depends_on: list[UUID] = Field(
        default_factory=list,
        max_length=100,
        description="wait (invisible to the scheduler) until these tasks end; skipped if one "
        "does not complete",
    )


class TaskAccepted(Strict):
    task_id: UUID


class CancelRequest(Strict):
    reason: str = Field(default="cancelled by user", min_length=1, max_length=2000)


class TaskOutput(Strict):
    task_id: UUID
    status: TaskStatus
    output: str
    exit_code: int | None = None
    reason: str | None = None
    stderr: str = Field(default="", description="the end of a CLI command's stderr")
    usage: Usage


class TaskList(Strict):
    items: list[TaskView]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for more")


class AgentOut(AgentView):
    """An agent with its live status and load, as dashboards show it."""

    status: AgentStatus
    active_tasks: int = Field(description="tasks it holds now (its load)")
    capacity: int = Field(description="tasks it may hold at once (max_concurrent)")


class AgentPage(Strict):
    items: list[AgentOut]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for more")


class AgentRegistration(Strict):
    spec: AgentSpec
    test_connectivity: bool = Field(
        default=True,
        description="CLI agents on a host: ask an executor to reach the host and find the CLI "
        "first, and refuse the registration if it cannot",
    )


class ConnectivityResult(Strict):
    tested: bool
    ok: bool | None = None
    detail: str = ""


class AgentWritten(Strict):
    """The answer to a write on an agent: its state afterwards."""

    agent: AgentOut
    connectivity: ConnectivityResult | None = None


class AgentRemoved(Strict):
    name: str
    removed: bool = True


class KeyRequest(Strict):
    name: str = Field(min_length=1, max_length=200, description="what or who the key is for")
    role: Role
    expires_at: AwareDatetime | None = Field(default=None, description="default: never")


class KeyCreated(Strict):
    """The new key. `key` is shown here once: only its hash is stored."""

    key: str
    prefix: str
    name: str
    role: Role
    expires_at: datetime | None = None


class Me(Strict):
    actor: str
    role: Role
    key_prefix: str | None = None
    auth: Literal["api_key", "disabled"]


class Health(Strict):
    status: Literal["ok"]


class Readiness(Strict):
    status: Literal["ready", "not_ready"]
    nats: bool
    coordinator: bool
    detail: str = ""
    down: dict[str, str] = Field(
        default_factory=dict, description="the coordinator's loops that are down, with why"
    )


def agent_status(agent: AgentView) -> AgentStatus:
    if not agent.enabled:
        return "disabled"
    if not getattr(agent, "healthy", True):
        return "unhealthy"
    if not agent.reachable:
        return "unreachable"
    if agent.load >= agent.spec.max_concurrent:
        return "full"
    return "busy" if agent.load else "idle"


def agent_out(agent: AgentView) -> AgentOut:
    return AgentOut(
        **agent.model_dump(),
        status=agent_status(agent),
        active_tasks=agent.load,
        capacity=agent.spec.max_concurrent,
    )
