"""The workflow contract: commands, queries and views for workflows and their executions.

A workflow is stored from its source text (native YAML `whoosh: workflow/v1`, or an n8n
export in JSON), checked and translated by the coordinator; an execution runs one
pinned version of it. Event payloads are in `events.py` with the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.commands import Command
from whoosh_shared.contract.queries import Query

MAX_SOURCE_CHARS = 1_000_000
WorkflowName = str
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
STEP_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
ExecutionStatus = Literal["running", "succeeded", "failed", "cancelled", "timed_out"]
StepStatus = Literal["pending", "running", "waiting", "succeeded", "failed", "skipped", "cancelled"]


class CreateWorkflow(Command):
    """Store a workflow (a new one, or a new version of one with the same name).

    Exactly one of `source` (YAML or n8n JSON text) and `template` (a shipped template's
    name). `name` overrides the name in the source. Refused, with every problem listed
    and nothing stored, when the definition does not check."""

    SUBJECT: ClassVar[str] = subjects.command("workflow.create")
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    source: str | None = Field(default=None, max_length=MAX_SOURCE_CHARS)
    template: str | None = Field(default=None, pattern=NAME_PATTERN)
    format: Literal["auto", "yaml", "n8n"] = "auto"
    filename: str = Field(default="workflow", max_length=300, description="named in errors")

    @model_validator(mode="after")
    def _one_source(self) -> CreateWorkflow:
        if (self.source is None) == (self.template is None):
            raise ValueError("give exactly one of 'source' and 'template'")
        return self


class RunWorkflow(Command):
    SUBJECT: ClassVar[str] = subjects.command("workflow.run")
    workflow: str = Field(pattern=NAME_PATTERN)
    inputs: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, description="None: the latest")


class ExecutionCommand(Command):
    execution_id: UUID


class CancelExecution(ExecutionCommand):
    SUBJECT: ClassVar[str] = subjects.command("execution.cancel")
    reason: str = Field(default="cancelled by user", max_length=2000)


class RetryExecution(ExecutionCommand):
    """Run again the steps that did not succeed (or `from_step` and everything after it);
    the outputs of the steps that succeeded are kept."""

    SUBJECT: ClassVar[str] = subjects.command("execution.retry")
    from_step: str | None = Field(default=None, pattern=STEP_PATTERN)


class DecideApproval(ExecutionCommand):
    SUBJECT: ClassVar[str] = subjects.command("execution.approve")
    step: str = Field(pattern=STEP_PATTERN)
    approve: bool
    comment: str = Field(default="", max_length=2000)


WORKFLOW_COMMANDS: tuple[type[Command], ...] = (
    CreateWorkflow,
    RunWorkflow,
    CancelExecution,
    RetryExecution,
    DecideApproval,
)


class ListWorkflows(Query):
    SUBJECT: ClassVar[str] = subjects.query("workflow.list")


class GetWorkflow(Query):
    SUBJECT: ClassVar[str] = subjects.query("workflow.get")
    name: str = Field(pattern=NAME_PATTERN)
    version: int | None = Field(default=None, ge=1)


class ListExecutions(Query):
    SUBJECT: ClassVar[str] = subjects.query("execution.list")
    workflow: str | None = Field(default=None, pattern=NAME_PATTERN)
    status: ExecutionStatus | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class GetExecution(Query):
    SUBJECT: ClassVar[str] = subjects.query("execution.get")
    execution_id: UUID


WORKFLOW_QUERIES: tuple[type[Query], ...] = (
    ListWorkflows,
    GetWorkflow,
    ListExecutions,
    GetExecution,
)


class WorkflowSummary(Strict):
    id: UUID
    name: str
    description: str = ""
    version: int
    steps: int
    origin: str = Field(description="yaml, n8n or template:<name>")
    created_at: datetime
    updated_at: datetime


class WorkflowView(WorkflowSummary):
    shown_version: int
    definition: dict[str, Any] = Field(description="the normalized definition of that version")
    source: str = Field(description="the text it was stored from")
    yaml: str = Field(
        default="",
        description="that version as compact native YAML (defaults left out): what an n8n "
        "import became, and a file that imports back to the same definition",
    )


class WorkflowList(Strict):
    workflows: list[WorkflowSummary]


class StepView(Strict):
    id: str
    type: str
    status: StepStatus
    port: str | None = None
    round: int = 0
    task_id: UUID | None = None
    thread_id: UUID | None = Field(default=None, description="a review step's thread")
    agent: str | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    output: str = ""
    error: str | None = None
    stderr: str = Field(default="", description="the end of its CLI command's stderr")
    exit_code: int | None = None
    waiting_for: Literal["approval", "wait"] | None = None
    wake_at: datetime | None = None
    message: str | None = Field(default=None, description="an approval's question")
    decided_by: str | None = None


class ExecutionView(Strict):
    id: UUID
    workflow: str
    version: int
    status: ExecutionStatus
    reason: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    actor: str = "system"
    round: int = 0
    started_at: datetime
    finished_at: datetime | None = None
    deadline_at: datetime | None = None
    steps: list[StepView] = Field(default_factory=list)
    sequence: int = 0


class ExecutionList(Strict):
    executions: list[ExecutionView]


class TemplateInfo(Strict):
    name: str
    description: str
    steps: list[str]
