"""A dry run of the scheduler: which agents could run a task with these needs, and why
the others could not. Asked by the MCP tool `whoosh_find_agents` (and anything else that
wants to know before it submits); answered by the coordinator, which owns the rules."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from whoosh_shared import subjects
from whoosh_shared.agents import AgentName, CapabilityName, Strict
from whoosh_shared.commands import MAX_PROMPT_CHARS
from whoosh_shared.enums import AgentType
from whoosh_shared.queries import Query


class FindAgents(Query):
    SUBJECT: ClassVar[str] = subjects.query("agent.find")
    capabilities: list[CapabilityName] = Field(default_factory=list, max_length=100)
    agent_type: AgentType | None = None
    model: str | None = Field(default=None, max_length=200)
    agent: AgentName | None = Field(default=None, description="pinned to this agent")
    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS, description="for context length")


class AgentFit(Strict):
    name: str
    eligible: bool
    rank: int | None = Field(default=None, description="1: the scheduler's first choice now")
    free_slots: int
    reason: str | None = Field(default=None, description="why it cannot run the task")


class AgentFits(Strict):
    """Eligible agents best first (those with a free slot before full ones), then the rest."""

    agents: list[AgentFit]
