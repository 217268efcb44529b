"""Closed vocabularies shared by every service."""

from __future__ import annotations

from enum import StrEnum


class AgentType(StrEnum):
    """Which protocol an agent speaks, and so which executor runs its work."""

    OLLAMA = "ollama"
    OPENAI = "openai-compatible"
    CLI = "cli"


class CliKind(StrEnum):
    """Which CLI a `cli` agent runs; decides how its output is parsed."""

    GENERIC = "generic"
    GEMINI = "gemini"
    CLAUDE = "claude"
    CODEX = "codex"


class TaskStatus(StrEnum):
    """Task lifecycle: queued -> assigned -> running -> one terminal state; a task with
    dependencies is `waiting` (invisible to the scheduler) until they settle, then queued,
    or `skipped` when one of them did not complete."""

    WAITING = "waiting"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def active(self) -> bool:
        """Held by an agent: assigned or running."""
        return self in (TaskStatus.ASSIGNED, TaskStatus.RUNNING)


TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.TIMED_OUT,
        TaskStatus.SKIPPED,
    }
)

# Agent work queue subjects use the type's short token (no dashes or dots in subjects).
WORK_TOKEN = {AgentType.OLLAMA: "ollama", AgentType.OPENAI: "openai", AgentType.CLI: "cli"}
