"""Messages between the coordinator's relay and the executors."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from whoosh_shared.contract.agents import AgentSpec, Strict
from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.commands import LlmOptions


class WorkItem(Strict):
    """One attempt of one task for one agent, delivered on the agent's work queue.

    It carries the agent's spec so an executor needs no registry of its own: any
    executor of the right type can run any agent's work.
    """

    task_id: UUID
    attempt: int = Field(ge=1)
    agent: AgentSpec
    prompt: str
    prompt_ref: BlobRef | None = Field(
        default=None, description="the executor fetches the prompt from here before running"
    )
    timeout_s: float
    llm: LlmOptions | None = None
    model: str | None = Field(default=None, description="the task's model, else the agent's")
    workspace_disposable: bool = Field(
        default=False, description="retry even after the agent ran tools (fresh workspace)"
    )

    @property
    def msg_id(self) -> str:
        return f"work:{self.task_id}:{self.attempt}"


class ProgressLine(Strict):
    """One line of live output (ephemeral: core NATS, not stored)."""

    task_id: UUID
    attempt: int
    seq: int
    stream: str = "stdout"
    line: str


class StoreAppended(Strict):
    """Nudge after a save, so followers of the notification log need not wait for a poll."""

    notification_id: int
    origin: str = Field(default="", description="who saved: a writer ignores its own nudges")
