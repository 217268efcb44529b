"""A dry run of the scheduler for needs without a task: which agents could run work like
this, and why the others could not. Asked by the MCP tool `whoosh_find_agents` (and
anything else that wants to know before it submits); answered by the coordinator, which
owns the rules, with the same Explanation that ExplainTask gives for a task."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentName, CapabilityName
from whoosh_shared.contract.commands import MAX_PROMPT_CHARS
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.queries import Query


class FindAgents(Query):
    """Answered with whoosh_shared.contract.explain.Explanation."""

    SUBJECT: ClassVar[str] = subjects.query("agent.find")
    capabilities: list[CapabilityName] = Field(default_factory=list, max_length=100)
    agent_type: AgentType | None = None
    model: str | None = Field(default=None, max_length=200)
    agent: AgentName | None = Field(default=None, description="pinned to this agent")
    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS, description="for context length")
