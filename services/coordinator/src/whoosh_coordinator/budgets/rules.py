"""Pure budget arithmetic: periods, shares, whether a reservation fits, what a task cost.

No clock of its own (`now` is passed in) so replay and tests are deterministic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from whoosh_shared.contract.budgets import Period

KEY_ACTOR = re.compile(r"^key (\S+)")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def period_start(period: str, now: datetime) -> datetime | None:
    """The UTC start of the period containing `now` (None: the budget never resets).
    30-day periods are counted from the Unix epoch so every coordinator agrees."""
    if period == Period.NONE:
        return None
    if period == Period.DAY:
        return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.MONTH:
        return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = (now - EPOCH).days // 30 * 30
    return EPOCH + timedelta(days=days)


def share(used: float, limit: float | None) -> float:
    if limit is None:
        return 0.0
    if limit <= 0:
        return 1.0 if used >= 0 else 0.0
    return used / limit


def over(tokens: int, usd: float, limit_tokens: int | None, limit_usd: float | None) -> bool:
    """Whether use (with reservations) goes past a limit."""
    return (limit_tokens is not None and tokens > limit_tokens) or (
        limit_usd is not None and usd > limit_usd + 1e-12
    )


def scopes_of(
    actor: str, agent: str | None, origin: dict[str, str] | None, project: str | None = None
) -> list[str]:
    """Every budget scope a task counts against."""
    scopes = ["global"]
    if match := KEY_ACTOR.match(actor):
        scopes.append(f"key:{match.group(1)}")
    if agent:
        scopes.append(f"agent:{agent}")
    if origin and origin.get("kind") == "thread":
        scopes.append(f"thread:{origin['id']}")
    project = project or (origin or {}).get("project")
    if project:
        scopes.append(f"project:{project}")
    return scopes


def estimate_tokens(prompt: str, llm: dict[str, Any] | None) -> int:
    """What a task will use at most, as far as anyone can say before it runs: its prompt
    (4 characters a token) plus its output cap (num_predict, else 256)."""
    predict = ((llm or {}).get("options") or {}).get("num_predict")
    out = int(predict) if isinstance(predict, int) and predict > 0 else 256
    return len(prompt) // 4 + 1 + out


def cost_usd(
    tokens_in: int, tokens_out: int, reported: float, price: dict[str, float] | None
) -> float:
    """The CLI's reported cost when there is one; else the price table (USD per million
    tokens in and out); else 0 (a local model)."""
    if reported > 0:
        return reported
    if not price:
        return 0.0
    return (tokens_in * price.get("in", 0.0) + tokens_out * price.get("out", 0.0)) / 1_000_000
