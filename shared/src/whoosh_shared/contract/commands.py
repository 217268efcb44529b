"""Commands: requests to change state, sent to the coordinator by request-reply.

Each command class names its own subject (`SUBJECT`), so a sender cannot pair a
model with the wrong subject. Every command is answered with a CommandReply.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, field_validator

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import (
    AgentName,
    AgentSpec,
    AgentUpdate,
    CapabilityName,
    Strict,
    Weight,
)
from whoosh_shared.contract.alerts import Severity
from whoosh_shared.contract.api_keys import PREFIX_PATTERN, Role
from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.inventory import Inventory
from whoosh_shared.contract.limits import check_json_value, check_map

MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 1, 10, 5
# A hard ceiling only: the size policy is limits.max_prompt_bytes (UTF-8 bytes), checked
# by every door, and a prompt over limits.inline_bytes travels as a `prompt_ref`.
MAX_PROMPT_CHARS = 1024 * 1024 * 1024
MAX_SYSTEM_CHARS = 65_536  # an LLM system prompt rides inline in every message
MAX_OUTPUT_CHARS = 65_536  # kept in the TaskCompleted event; longer output keeps its tail
# A CLI command's stderr tail (limits.stderr_tail_bytes, at most 64 KiB of UTF-8: as many
# characters at most), carried inline beside `output` in a task's end.
MAX_STDERR_CHARS = 65_536
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"  # printable ASCII, no spaces (an HTTP header)


class RejectCode(StrEnum):
    """Why a command was rejected, for programs; `reason` says it for people."""

    INVALID = "invalid"  # the message does not validate against its model
    NOT_FOUND = "not_found"  # names an agent or task that does not exist
    DUPLICATE = "duplicate"  # an agent with this name exists
    BAD_STATE = "bad_state"  # e.g. cancel of a finished task, stale attempt
    NO_CAPABLE_AGENT = "no_capable_agent"  # no registered agent could ever run it
    CONFLICT = "conflict"  # lost an optimistic-concurrency race too many times
    INTERNAL = "internal"  # a bug: the coordinator logged it and stayed up
    LIMITED = "limited"  # the submitter has as many unfinished tasks as it may have
    TOO_LARGE = "too_large"  # over a size limit (limits.* in whoosh.yaml)
    FORBIDDEN = "forbidden"  # the caller's role (or an allowlist in whoosh.yaml) does not allow it
    KEY_REUSED = "idempotency_key_reused"  # an idempotency key sent again with another request


class Command(Strict):
    SUBJECT: ClassVar[str]
    actor: str = Field(default="system", max_length=200, description="who asked (audit)")


CALLER_ROLE = Field(
    default=None,
    description="the caller's API-key role as the gateway verified it; None: a client on "
    "the bus itself, whose NATS credentials are the authority (see agent_policy)",
)


class RegisterAgent(Command):
    SUBJECT: ClassVar[str] = subjects.command("agent.register")
    spec: AgentSpec
    role: Role | None = CALLER_ROLE
    check_only: bool = Field(
        default=False,
        description="decide (who may define it, where it points, a free name) and answer, "
        "storing nothing: asked before an executor tests a new agent's connectivity",
    )


class UpdateAgent(Command):
    SUBJECT: ClassVar[str] = subjects.command("agent.update")
    name: AgentName
    changes: AgentUpdate
    role: Role | None = CALLER_ROLE


class EnableAgent(Command):
    SUBJECT: ClassVar[str] = subjects.command("agent.enable")
    name: AgentName


class DisableAgent(Command):
    SUBJECT: ClassVar[str] = subjects.command("agent.disable")
    name: AgentName


class SetAgentWeight(Command):
    """Change an agent's traffic weight (a rollout step, or 0 to drain it): recorded as
    AgentWeightChanged with the actor, so a rollout's history is in the audit trail."""

    SUBJECT: ClassVar[str] = subjects.command("agent.weight")
    name: AgentName
    weight: Weight


class RemoveAgent(Command):
    """Forget an agent: refused while it holds work or queued tasks are pinned to it.
    Its history stays in the store; the name may be registered again afterwards."""

    SUBJECT: ClassVar[str] = subjects.command("agent.remove")
    name: AgentName


class ReportInventory(Command):
    """An executor's probe of an LLM agent's server: recorded only when it changed."""

    SUBJECT: ClassVar[str] = subjects.command("agent.inventory")
    name: AgentName
    inventory: Inventory
    seen_version: int | None = Field(
        default=None,
        ge=0,
        description="the agent's version when the probe round began: a model marked missing "
        "(a 404) after it stays missing, since the listing may predate the 404",
    )


class ReportAgentHealth(Command):
    """A health verdict on an agent (from the monitor): recorded only when it changes.

    An unhealthy agent gets no new work until it is reported healthy again."""

    SUBJECT: ClassVar[str] = subjects.command("agent.health")
    name: AgentName
    healthy: bool
    reason: str | None = Field(default=None, max_length=500)


class RetryPolicy(Strict):
    max_attempts: int = Field(default=2, ge=1, le=20, description="1 means never retry")
    backoff_s: float = Field(default=0.0, ge=0, le=3600)
    workspace_disposable: bool = Field(
        default=False,
        description="each attempt gets a fresh workspace: retry even after the agent ran tools",
    )


class LlmOptions(Strict):
    """How an LLM agent should answer; passed through to the server as its API defines.

    `options` are Ollama's names (num_ctx, temperature, seed, num_predict, stop, ...);
    `format` is "json" or a JSON schema; `raw` asks for plain completion (/api/generate)."""

    system: str | None = Field(default=None, max_length=MAX_SYSTEM_CHARS)
    options: dict[str, Any] = Field(default_factory=dict)
    format: str | dict[str, Any] | None = None
    keep_alive: str | float | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list, max_length=256)
    raw: bool = False

    @field_validator("options", "format", "tools")
    @classmethod
    def _bounded_json(cls, value: Any, info: Any) -> Any:
        """Free-form JSON, bounded in depth and size: it is copied into events and work."""
        if isinstance(value, dict):
            check_map(value, f"llm.{info.field_name}")
        return check_json_value(value, f"llm.{info.field_name}")


class SubmitTask(Command):
    SUBJECT: ClassVar[str] = subjects.command("task.submit")
    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="the prompt, or its preview when `prompt_ref` carries it",
    )
    prompt_ref: BlobRef | None = Field(
        default=None,
        description="a prompt over limits.inline_bytes, stored in the blob store "
        "(whoosh_shared.contract.blobs); `prompt` is then its preview",
    )
    priority: int = Field(default=DEFAULT_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    capabilities: list[CapabilityName] = Field(default_factory=list)
    agent_type: AgentType | None = None
    model: str | None = None
    agent: AgentName | None = Field(default=None, description="pin the task to one agent")
    timeout_s: float = Field(default=600.0, gt=0, le=7 * 24 * 3600)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    llm: LlmOptions | None = Field(default=None, description="for ollama / openai agents")
    depends_on: list[UUID] = Field(
        default_factory=list,
        max_length=100,
        description="tasks that must complete first: until they end this task waits, "
        "invisible to the scheduler; it is skipped (with the reason) if one does not complete",
    )
    max_active_tasks: int | None = Field(
        default=None,
        ge=1,
        description="refuse (code 'limited') if the actor already has this many unfinished "
        "tasks; the gateway sets it from the caller's key, and the coordinator decides it "
        "so that concurrent submits cannot both slip under the limit",
    )
    idempotency_key: str | None = Field(
        default=None,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="the same key from the same actor returns the task it created the "
        "first time instead of a second one (safe retries after a timeout or a 503)",
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt is empty")
        return value


class TaskCommand(Command):
    task_id: UUID


class AttemptCommand(TaskCommand):
    """Commands from an executor name the attempt, so a stale executor cannot touch a retry."""

    attempt: int = Field(ge=1)


class StartTask(AttemptCommand):
    SUBJECT: ClassVar[str] = subjects.command("task.start")
    executor_id: str = Field(min_length=1, max_length=200)


class ReportProgress(AttemptCommand):
    SUBJECT: ClassVar[str] = subjects.command("task.progress")
    message: str = Field(min_length=1, max_length=2000)


class Usage(Strict):
    """What one attempt consumed; LLM figures stay 0 for plain commands."""

    duration_s: float = Field(default=0.0, ge=0)
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    time_to_first_token_s: float = Field(default=0.0, ge=0)
    load_s: float = Field(default=0.0, ge=0, description="model load time (Ollama)")
    prefill_tps: float = Field(default=0.0, ge=0, description="prompt tokens per second")
    decode_tps: float = Field(default=0.0, ge=0, description="generated tokens per second")


STDERR_FIELD = Field(
    default="",
    max_length=MAX_STDERR_CHARS,
    description="the end of a CLI command's stderr (limits.stderr_tail_bytes), behind a marker "
    "saying how many bytes were dropped when it was longer; empty for other agents",
)


class CompleteTask(AttemptCommand):
    SUBJECT: ClassVar[str] = subjects.command("task.complete")
    output: str = Field(default="", max_length=MAX_OUTPUT_CHARS)
    output_ref: BlobRef | None = Field(
        default=None,
        description="the whole kept output (up to limits.max_output_bytes, head and tail) in "
        "the blob store when over limits.inline_bytes; `output` is then its head and tail",
    )
    exit_code: int | None = None
    stderr: str = STDERR_FIELD
    usage: Usage = Field(default_factory=Usage)


class FailTask(AttemptCommand):
    SUBJECT: ClassVar[str] = subjects.command("task.fail")
    reason: str = Field(min_length=1, max_length=2000)
    output: str = Field(default="", max_length=MAX_OUTPUT_CHARS)
    output_ref: BlobRef | None = Field(
        default=None,
        description="the whole kept output (up to limits.max_output_bytes, head and tail) in "
        "the blob store when over limits.inline_bytes; `output` is then its head and tail",
    )
    exit_code: int | None = None
    stderr: str = STDERR_FIELD
    retryable: bool = True
    timed_out: bool = False
    usage: Usage = Field(default_factory=Usage)
    missing_model: str | None = Field(
        default=None,
        max_length=200,
        description="the agent's server lacks this model (404): the task was rejected for "
        "this agent, not failed; it goes to another agent and does not use up an attempt",
    )


class CancelTask(TaskCommand):
    SUBJECT: ClassVar[str] = subjects.command("task.cancel")
    reason: str = Field(default="cancelled by user", max_length=2000)


class CreateApiKey(Command):
    """Record a new API key. The caller generated it and sends only its hash."""

    SUBJECT: ClassVar[str] = subjects.command("apikey.create")
    prefix: str = Field(pattern=PREFIX_PATTERN, description="the key's public part")
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the whole key")
    name: str = Field(min_length=1, max_length=200, description="what the key is for")
    role: Role
    expires_at: AwareDatetime | None = Field(default=None, description="None: never expires")


class RevokeApiKey(Command):
    SUBJECT: ClassVar[str] = subjects.command("apikey.revoke")
    prefix: str = Field(pattern=PREFIX_PATTERN)


class AlertCommand(Command):
    """Names one alert: its rule and the labels of the series it is about."""

    rule: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    labels: dict[str, str] = Field(default_factory=dict, max_length=20)


class RaiseAlert(AlertCommand):
    """From the monitor: a rule's condition has held for its `for` duration. Raised once
    while firing: asking again for a firing alert records nothing."""

    SUBJECT: ClassVar[str] = subjects.command("alert.raise")
    severity: Severity
    summary: str = Field(default="", max_length=500)
    value: float | None = None
    threshold: float | None = None


class ResolveAlert(AlertCommand):
    """The condition no longer holds; resolving an alert that is not firing records nothing."""

    SUBJECT: ClassVar[str] = subjects.command("alert.resolve")
    reason: str = Field(default="condition cleared", max_length=500)


COMMANDS: tuple[type[Command], ...] = (
    RegisterAgent,
    UpdateAgent,
    EnableAgent,
    DisableAgent,
    ReportInventory,
    ReportAgentHealth,
    SubmitTask,
    StartTask,
    ReportProgress,
    CompleteTask,
    FailTask,
    CancelTask,
    RemoveAgent,
    CreateApiKey,
    RevokeApiKey,
    RaiseAlert,
    ResolveAlert,
    SetAgentWeight,
)


class CommandReply(Strict):
    """The coordinator's answer: accepted (with the ids it created) or rejected with a reason."""

    status: Literal["accepted", "rejected"]
    ids: dict[str, str] = Field(default_factory=dict)
    code: str | None = Field(default=None, description="machine-readable rejection code")
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @classmethod
    def accept(cls, **ids: str) -> CommandReply:
        return cls(status="accepted", ids=ids)

    @classmethod
    def reject(cls, code: RejectCode, reason: str) -> CommandReply:
        return cls(status="rejected", code=code.value, reason=reason)
