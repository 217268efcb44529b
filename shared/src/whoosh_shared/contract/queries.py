"""Queries answered from the coordinator's projections, and the views they return."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentName, AgentSpec, CapabilityName, Strict
from whoosh_shared.contract.alerts import AlertStatus, AlertView
from whoosh_shared.contract.api_keys import PREFIX_PATTERN, Role
from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.commands import LlmOptions, Usage
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.inventory import Inventory, SpeedStats, Warmth

MAX_EVENT_ID = 2**53  # notification ids stay far below; the stores' integers hold this


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
    capability: CapabilityName | None = Field(default=None, description="tasks requiring it")
    submitted_after: AwareDatetime | None = Field(default=None, description="inclusive")
    submitted_before: AwareDatetime | None = Field(default=None, description="exclusive")


class GetEvents(Query):
    """Stored events in notification order, answered from the store (not a projection).

    With `aggregate_id`: that task's, agent's or key's whole history (read by its id, so
    it is cheap however old it is). Without: the global log, to resume a feed."""

    SUBJECT: ClassVar[str] = subjects.query("events")
    aggregate_id: UUID | None = None
    after: int = Field(
        default=0, ge=0, le=MAX_EVENT_ID, description="notification id last seen (0: the start)"
    )
    limit: int = Field(default=100, ge=1, le=1000)


class VerifyApiKey(Query):
    """Is this key valid now? Answered with the key's view, or an error 'unauthorized'."""

    SUBJECT: ClassVar[str] = subjects.query("apikey.verify")
    prefix: str = Field(pattern=PREFIX_PATTERN)
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ListApiKeys(Query):
    SUBJECT: ClassVar[str] = subjects.query("apikey.list")


WITH_ENV = Field(
    default=False,
    description="the env values as stored, for the services that call agents (executors' "
    "and the monitor's probes, `whoosh up`'s sync); every other reader gets them masked",
)


class ListAgents(Query):
    SUBJECT: ClassVar[str] = subjects.query("agent.list")
    with_env: bool = WITH_ENV


class GetAgent(Query):
    SUBJECT: ClassVar[str] = subjects.query("agent.get")
    name: AgentName
    with_env: bool = WITH_ENV


class GetStats(Query):
    SUBJECT: ClassVar[str] = subjects.query("stats")


class TaskView(Strict):
    id: UUID
    status: TaskStatus
    prompt: str = Field(description="the prompt, or a preview (lists; prompt_ref set)")
    prompt_ref: BlobRef | None = Field(
        default=None, description="where the whole prompt is (GET /tasks/{id}/prompt)"
    )
    priority: int
    capabilities: list[str]
    agent_type: str | None = None
    model: str | None = None
    pinned_agent: str | None = None
    timeout_s: float
    llm: LlmOptions | None = None
    max_attempts: int
    workspace_disposable: bool = False
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
    output_ref: BlobRef | None = Field(
        default=None, description="the whole kept output (GET /tasks/{id}/output serves it)"
    )
    exit_code: int | None = None
    stderr: str = Field(
        default="", description="the end of a CLI command's stderr (limits.stderr_tail_bytes)"
    )
    reason: str | None = None
    last_progress: str | None = None
    usage: Usage = Field(default_factory=Usage)
    version: int = 0
    origin: dict[str, str] | None = Field(
        default=None, description="what created the task inside the coordinator, if anything"
    )
    submitted_by: str = Field(default="system", description="the submitting actor (audit)")
    depends_on: list[UUID] = Field(default_factory=list, description="tasks it waits for")


class AgentView(Strict):
    id: UUID
    spec: AgentSpec
    enabled: bool
    in_flight: list[UUID] = Field(default_factory=list)
    completed: int = 0
    failed: int = 0
    version: int = 0
    inventory: Inventory | None = Field(default=None, description="last probe (LLM agents)")
    missing_models: list[str] = Field(
        default_factory=list, description="models the server answered 404 for since that probe"
    )
    speeds: dict[str, SpeedStats] = Field(
        default_factory=dict, description="per model, measured from completed tasks"
    )
    warmth: dict[str, Warmth] = Field(
        default_factory=dict,
        description="per model: loaded on the server and until when, folded from probes, "
        "slots and completions (the scheduler reads it with its clock)",
    )

    healthy: bool = Field(default=True, description="the monitor's last verdict")
    health_reason: str | None = None

    @property
    def reachable(self) -> bool:
        return self.inventory is None or self.inventory.reachable

    @property
    def in_rotation(self) -> bool:
        """Whether the scheduler may give it new work now (load aside)."""
        return self.enabled and self.healthy and self.reachable

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
    down: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "loops not healthy now, with why: the answering coordinator's own by name, "
            "other processes' (executors, monitor) as '<process>: <loop>'"
        ),
    )


class EventPage(Strict):
    events: list[EventEnvelope]
    next_cursor: int | None = Field(default=None, description="pass as `after` for more")


class ApiKeyView(Strict):
    """A key as lists show it: never its hash."""

    id: UUID
    prefix: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class ApiKeyList(Strict):
    keys: list[ApiKeyView]


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


class ListAlerts(Query):
    """Alerts newest first: firing ones, resolved ones, or both (status unset)."""

    SUBJECT: ClassVar[str] = subjects.query("alert.list")
    status: AlertStatus | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class AlertList(Strict):
    alerts: list[AlertView]
