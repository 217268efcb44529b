"""Why the scheduler places a task where it does: the ExplainTask query and its answer.

Every agent of the fleet is listed with its verdict for the task (eligible or the rule that
excludes it, its load, weight and the estimate the scheduler would use), and one line says
what decides: the estimate, a warm model, load, proficiency, traffic weights, a pin, or
why the task waits. It is evaluated against the fleet as it is when asked (the same rules
as the scheduler, no second copy of them), so for a task already placed it shows how the
fleet looks now beside where the task went.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from pydantic import Field

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.queries import Query


class AgentConsidered(Strict):
    """One agent's verdict for the task."""

    agent: str
    eligible: bool = Field(description="could run the task (load aside)")
    free: bool = Field(description="eligible and with a free slot now (and not skipped as tried)")
    reason: str | None = Field(
        default=None, description="why it is not eligible, or not free; None for a candidate"
    )
    load: int = Field(ge=0)
    capacity: int = Field(ge=1)
    weight: int = Field(ge=0, le=100)
    estimate_s: float | None = Field(
        default=None, description="estimated seconds to finish there (None: not measured in tokens)"
    )
    warm: bool | None = Field(
        default=None,
        description="model loaded now (probes, running work, keep-alive); None: unknown",
    )
    chosen: bool = Field(default=False, description="where the scheduler would place it now")


class Explanation(Strict):
    """The scheduler's view of one piece of work against the fleet."""

    decision: str = Field(description="one line: who would take it and what decided, or why not")
    chosen: str | None = Field(default=None, description="the agent it would go to now")
    needs: dict[str, Any] = Field(
        default_factory=dict,
        description="what it asks: agent, type, model, capabilities, prompt/output tokens",
    )
    agents: list[AgentConsidered] = Field(default_factory=list)


class TaskExplanation(Explanation):
    task_id: UUID
    status: str
    agent: str | None = Field(default=None, description="the agent the task is (or was) on")


class ExplainTask(Query):
    SUBJECT: ClassVar[str] = subjects.query("task.explain")
    task_id: UUID
