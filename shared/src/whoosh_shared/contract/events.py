"""Domain events as every consumer sees them on the bus.

The coordinator's aggregates record these facts in the store; the relay wraps
each one in an EventEnvelope and publishes it on `whoosh.evt.<aggregate>.<id>.<type>`.
`data` validates against the payload model registered under `type` here, so a
consumer needs nothing but this module to read the stream.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from whoosh_shared.contract.agents import AgentSpec, Strict
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.collab_events import COLLAB_EVENTS
from whoosh_shared.contract.commands import MAX_STDERR_CHARS, LlmOptions, RetryPolicy, Usage
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.inventory import Inventory

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EventData(Strict):
    """Base of event payloads."""


# The end of a CLI command's stderr (see commands.STDERR_FIELD); empty in events stored
# before it existed, so they load and replay unchanged.
STDERR_TAIL = Field(default="", max_length=MAX_STDERR_CHARS)


class AgentRegistered(EventData):
    spec: AgentSpec
    actor: str = "system"


class AgentUpdated(EventData):
    changes: dict[str, Any]
    actor: str = "system"


class AgentEnabled(EventData):
    actor: str = "system"


class AgentDisabled(EventData):
    actor: str = "system"


class AgentWeightChanged(EventData):
    """The agent's traffic weight changed (rollout step, drain with 0, or back)."""

    weight: int = Field(ge=0, le=100)
    previous: int = Field(ge=0, le=100)
    actor: str = "system"


class AgentRemoved(EventData):
    """The agent was taken out of the fleet (it held no work); its name is free again."""

    actor: str = "system"


class AgentReregistered(EventData):
    """A removed agent's name was registered again: a fresh definition on the same id."""

    spec: AgentSpec
    actor: str = "system"


class ApiKeyCreated(EventData):
    """A key was issued; only the hash of its secret is recorded."""

    prefix: str
    name: str
    role: Role
    key_hash: str
    expires_at: datetime | None = None
    actor: str = "system"


class ApiKeyRevoked(EventData):
    actor: str = "system"


class AgentInventoryReported(EventData):
    """What an executor found on the agent's server (recorded when it changed)."""

    inventory: Inventory
    still_missing: list[str] = Field(
        default_factory=list, description="models whose 404 came after this probe began"
    )
    seen_version: int | None = Field(
        default=None,
        description="the agent's version when the probe round began: work that ended on it "
        "after that may be newer than what the probe saw; None: not known",
    )


class AgentModelMissing(EventData):
    """The server answered 404 for this model: no work for it here until a probe finds it."""

    model: str
    task_id: UUID


class AgentHealthChanged(EventData):
    """The agent became unhealthy (no new work) or healthy again."""

    healthy: bool
    reason: str | None = None
    actor: str = "system"


class AgentSlotTaken(EventData):
    task_id: UUID
    attempt: int


class AgentSlotReleased(EventData):
    task_id: UUID
    attempt: int


class TaskSubmitted(EventData):
    prompt: str = Field(description="the prompt, or its preview when prompt_ref is set")
    prompt_ref: BlobRef | None = None
    priority: int
    capabilities: list[str] = Field(default_factory=list)
    agent_type: AgentType | None = None
    model: str | None = None
    agent: str | None = None
    timeout_s: float
    retry: RetryPolicy
    actor: str = "system"
    llm: LlmOptions | None = None
    origin: dict[str, str] | None = None
    idempotency: dict[str, str] | None = Field(
        default=None, description="actor, key and request digest of an idempotent submit"
    )
    depends_on: list[UUID] = Field(default_factory=list)

    @field_validator("depends_on", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class TaskReleased(EventData):
    """The dependencies of a waiting task all completed: it is queued now."""


class TaskSkipped(EventData):
    """A dependency of a waiting task did not complete: the task will not run."""

    reason: str


class TaskAssigned(EventData):
    agent_id: UUID
    agent_name: str
    attempt: int
    weighted_among: dict[str, int] | None = Field(
        default=None,
        description="when traffic weights chose the agent: every agent (id) they chose among, "
        "with its weight; every coordinator folds the weighted round-robin turn from it",
    )


class TaskStarted(EventData):
    attempt: int
    executor_id: str


class TaskProgressed(EventData):
    attempt: int
    message: str


class TaskCompleted(EventData):
    attempt: int
    output: str = ""
    output_ref: BlobRef | None = None
    exit_code: int | None = None
    stderr: str = STDERR_TAIL
    usage: Usage = Field(default_factory=Usage)


class TaskAttemptFailed(EventData):
    """One attempt failed and the retry policy sends the task back to the queue."""

    attempt: int
    agent_name: str | None = None
    reason: str
    exit_code: int | None = None
    output: str = ""
    output_ref: BlobRef | None = None
    stderr: str = STDERR_TAIL
    not_before: datetime | None = None
    rejected_for_agent: bool = Field(
        default=False, description="the agent could not run it at all: not counted as a try"
    )


class TaskFailed(EventData):
    attempt: int
    reason: str
    exit_code: int | None = None
    output: str = ""
    output_ref: BlobRef | None = None
    stderr: str = STDERR_TAIL
    usage: Usage = Field(default_factory=Usage)


class TaskCancelled(EventData):
    reason: str
    actor: str = "system"


class TaskTimedOut(EventData):
    attempt: int
    reason: str


class TaskOutputKept(EventData):
    """What the last attempt had produced when the task was cancelled or timed out."""

    attempt: int
    output: str = ""
    stderr: str = STDERR_TAIL
    usage: Usage = Field(default_factory=Usage)


class AlertCreated(EventData):
    """The first time a rule fired on this labelled series (an AlertRaised follows)."""

    rule: str
    labels: dict[str, str] = Field(default_factory=dict)


class AlertRaised(EventData):
    """A rule's condition held for its `for` duration on one labelled series."""

    rule: str
    severity: str
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    value: float | None = None
    threshold: float | None = None
    actor: str = "system"


class AlertResolved(EventData):
    reason: str = ""
    actor: str = "system"


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.__name__: cls
    for cls in (
        AgentRegistered,
        AgentUpdated,
        AgentEnabled,
        AgentDisabled,
        AgentRemoved,
        AgentReregistered,
        AgentInventoryReported,
        AgentModelMissing,
        AgentHealthChanged,
        AgentSlotTaken,
        AgentSlotReleased,
        AgentWeightChanged,
        TaskSubmitted,
        TaskAssigned,
        TaskStarted,
        TaskProgressed,
        TaskCompleted,
        TaskAttemptFailed,
        TaskFailed,
        TaskCancelled,
        TaskTimedOut,
        TaskOutputKept,
        TaskReleased,
        TaskSkipped,
        ApiKeyCreated,
        ApiKeyRevoked,
        AlertCreated,
        AlertRaised,
        AlertResolved,
    )
}
EVENT_TYPES.update({cls.__name__: cls for cls in COLLAB_EVENTS})  # type: ignore[misc]


class EventEnvelope(BaseModel):
    """One stored event, as published; `id` is the de-duplication id (Nats-Msg-Id).

    The id names the aggregate, its version and the moment the event happened: the same
    stored event republished keeps its id (and is dropped as a duplicate), while the
    event at the same aggregate version in another store (a wiped or replaced one)
    does not collide with it."""

    notification_id: int = Field(ge=1, description="position in the store's notification log")
    aggregate_type: Literal[
        "agent", "task", "apikey", "alert", "workflow", "execution", "thread", "budget"
    ]
    aggregate_id: UUID
    version: int = Field(ge=1)
    type: str
    timestamp: datetime
    data: dict[str, Any]

    @property
    def id(self) -> str:
        micros = (self.timestamp - EPOCH) // timedelta(microseconds=1)
        return f"{self.aggregate_id}:{self.version}:{micros}"

    def payload(self) -> EventData:  # or a collab_events payload (thread, budget)
        """The typed payload; raises KeyError for an event type this contract does not know."""
        return EVENT_TYPES[self.type].model_validate(self.data)


# -- workflows (whoosh_shared.contract.workflows has their commands and views) ---------------------


class WorkflowDefined(EventData):
    """A workflow's first version; later ones are WorkflowVersionAdded."""

    name: str
    definition: dict[str, Any]
    source: str
    origin: str
    actor: str = "system"


class WorkflowVersionAdded(EventData):
    definition: dict[str, Any]
    source: str
    origin: str
    actor: str = "system"


class ExecutionStarted(EventData):
    """A run of one pinned version; the definition is carried, so the run never changes."""

    workflow: str
    version: int
    definition: dict[str, Any]
    inputs: dict[str, Any] = Field(default_factory=dict)
    actor: str = "system"
    deadline_at: datetime | None = None


class ExecutionStepScheduled(EventData):
    """An agent step became a task, or a review step a thread (saved in the same
    transaction); `task_id` is then the thread's id."""

    step: str
    task_id: UUID
    round: int = 0


class ExecutionStepWaiting(EventData):
    step: str
    kind: Literal["approval", "wait"]
    wake_at: datetime | None = None
    message: str = ""


class ExecutionStepEnded(EventData):
    step: str
    status: Literal["succeeded", "failed", "skipped", "cancelled"]
    port: str | None = None
    output: str = ""
    error: str | None = None
    stderr: str = Field(default="", max_length=MAX_STDERR_CHARS)
    exit_code: int | None = None
    continued: bool = False
    actor: str = "system"


class ExecutionFinished(EventData):
    status: Literal["succeeded", "failed", "cancelled", "timed_out"]
    reason: str | None = None
    actor: str = "system"


class ExecutionRetried(EventData):
    round: int
    steps: list[str]
    actor: str = "system"
    deadline_at: datetime | None = None


EVENT_TYPES.update(
    {
        cls.__name__: cls
        for cls in (
            WorkflowDefined,
            WorkflowVersionAdded,
            ExecutionStarted,
            ExecutionStepScheduled,
            ExecutionStepWaiting,
            ExecutionStepEnded,
            ExecutionFinished,
            ExecutionRetried,
        )
    }
)
