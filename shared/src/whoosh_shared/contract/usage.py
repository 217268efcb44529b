"""The contract of usage reports: tokens, cost and time spent, per key, agent and model.

Budgets count only the scopes that have a budget, and only within their period; this is
the whole record, folded by the coordinator from every task's end since the store began
(a replay rebuilds it), so the dashboard and `whoosh usage` can show who used what before
anyone set a limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.queries import Query


class UsageTotals(Strict):
    tasks: int = Field(default=0, description="tasks ended (completed, failed, cancelled...)")
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0


class UsageRow(UsageTotals):
    name: str = Field(description="the submitting actor (key:PREFIX), agent or model")


class GetUsage(Query):
    SUBJECT: ClassVar[str] = subjects.query("usage.get")


class UsageReport(Strict):
    since: datetime | None = Field(default=None, description="the first task end counted")
    total: UsageTotals = Field(default_factory=UsageTotals)
    by_key: list[UsageRow] = Field(default_factory=list, description="most tokens first")
    by_agent: list[UsageRow] = Field(default_factory=list)
    by_model: list[UsageRow] = Field(default_factory=list)
