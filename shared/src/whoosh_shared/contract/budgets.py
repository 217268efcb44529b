"""The contract of budgets: token and USD limits per key, agent, thread, project or all.

A budget is reserved when a task is assigned (in the same transaction as the
assignment, so concurrent tasks cannot all slip under the limit) and charged with the
real use when the task ends. At `warn_at` of a limit an alert is raised once per
period; at 100 % new work is refused with a reason naming the budget, limit and use.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.commands import Command
from whoosh_shared.contract.queries import Query

SCOPE_PATTERN = r"^(global|(key|agent|thread|project):[A-Za-z0-9._:-]{1,100})$"


class Period(StrEnum):
    NONE = "none"
    DAY = "day"
    DAYS_30 = "30d"
    MONTH = "month"


class SetBudget(Command):
    """Create or change the budget of a scope (admin). At least one limit is needed."""

    SUBJECT: ClassVar[str] = subjects.command("budget.set")
    scope: str = Field(
        pattern=SCOPE_PATTERN, description="global, key:P, agent:N, thread:ID, project:N"
    )
    tokens: int | None = Field(default=None, ge=0, description="tokens in + out per period")
    usd: float | None = Field(default=None, ge=0)
    period: Period = Period.NONE
    warn_at: float = Field(default=0.8, gt=0, le=1)
    on_exhausted: Literal["refuse", "stop"] = "refuse"

    @model_validator(mode="after")
    def _has_a_limit(self) -> SetBudget:
        if self.tokens is None and self.usd is None:
            raise ValueError("give a limit: tokens and/or usd")
        return self


class BudgetView(Strict):
    scope: str
    tokens: int | None
    usd: float | None
    period: Period
    warn_at: float
    on_exhausted: str
    period_start: datetime | None = None
    used_tokens: int = 0
    used_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_usd: float = 0.0
    share_used: float = Field(default=0.0, description="the larger of tokens and USD used/limit")
    warned: bool = False
    exhausted: bool = False


class ListBudgets(Query):
    SUBJECT: ClassVar[str] = subjects.query("budget.list")


class BudgetList(Strict):
    budgets: list[BudgetView]
