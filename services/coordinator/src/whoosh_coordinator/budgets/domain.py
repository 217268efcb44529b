"""The Budget aggregate: one scope's limits, its use in the current period and the
reservations of the tasks that run against it.

Reserving is saved in the same transaction as the task's assignment; the aggregate's
version makes two concurrent assignments conflict, so they cannot both take the last
of a budget (the overspend LiteLLM documents for check-then-record).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from whoosh_coordinator.budgets.rules import over, period_start, share

NAMESPACE = uuid.UUID("0b7e2c55-7d0c-4f1e-9a43-5d9a2f1c0b11")


def budget_id(scope: str) -> UUID:
    return uuid.uuid5(NAMESPACE, scope)


class Budget(Aggregate):
    @staticmethod
    def create_id(scope: str) -> UUID:
        return budget_id(scope)

    @event("Created")
    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.tokens: int | None = None
        self.usd: float | None = None
        self.period = "none"
        self.warn_at = 0.8
        self.on_exhausted = "refuse"
        self.period_start: datetime | None = None
        self.used_tokens = 0
        self.used_usd = 0.0
        self.reservations: dict[str, list[float]] = {}  # task id -> [tokens, usd]
        self.warned = False
        self.exhausted = False

    # -- reading ------------------------------------------------------------------------

    @property
    def reserved_tokens(self) -> int:
        return int(sum(r[0] for r in self.reservations.values()))

    @property
    def reserved_usd(self) -> float:
        return sum(r[1] for r in self.reservations.values())

    def share_used(self) -> float:
        return max(share(self.used_tokens, self.tokens), share(self.used_usd, self.usd))

    def refusal(self) -> str | None:
        """Why new work is refused now, naming the budget, its limit and its use."""
        tokens = self.used_tokens + self.reserved_tokens
        usd = self.used_usd + self.reserved_usd
        if self.tokens is not None and tokens >= self.tokens:
            return (
                f"budget '{self.scope}' is exhausted: {tokens} of {self.tokens} tokens "
                f"used or reserved{self._period_note()}"
            )
        if self.usd is not None and usd >= self.usd:
            return (
                f"budget '{self.scope}' is exhausted: ${usd:.4f} of ${self.usd:.4f} "
                f"used or reserved{self._period_note()}"
            )
        return None

    @property
    def stops_running_work(self) -> bool:
        """Used up, and told to stop what still runs against it (not only refuse more)."""
        return self.exhausted and self.on_exhausted == "stop"

    def stop_reason(self) -> str:
        """Why its running tasks were cancelled: the budget, its limit and its use."""
        parts = []
        if self.tokens is not None:
            parts.append(f"{self.used_tokens} of {self.tokens} tokens")
        if self.usd is not None:
            parts.append(f"${self.used_usd:.4f} of ${self.usd:.4f}")
        return (
            f"budget '{self.scope}' is exhausted ({', '.join(parts)} used"
            f"{self._period_note()}) and says on_exhausted: stop"
        )

    def _period_note(self) -> str:
        return "" if self.period == "none" else f" this {self.period} period"

    # -- changes ------------------------------------------------------------------------

    def set(
        self,
        tokens: int | None,
        usd: float | None,
        period: str,
        warn_at: float,
        on_exhausted: str,
        actor: str,
    ) -> None:
        self._set(
            tokens=tokens,
            usd=usd,
            period=period,
            warn_at=warn_at,
            on_exhausted=on_exhausted,
            actor=actor,
        )

    @event("Set")
    def _set(
        self,
        tokens: int | None,
        usd: float | None,
        period: str,
        warn_at: float,
        on_exhausted: str,
        actor: str,
    ) -> None:
        self.tokens, self.usd, self.period = tokens, usd, period
        self.warn_at, self.on_exhausted = warn_at, on_exhausted
        self.warned = self.exhausted = False

    def roll(self, now: datetime) -> None:
        """Start a new period when `now` is past the current one (recorded lazily, at the
        next command that touches the budget: no timers, deterministic on replay)."""
        start = period_start(self.period, now)
        if start is not None and start != self.period_start:
            self._period_reset(period_start=start)

    @event("PeriodReset")
    def _period_reset(self, period_start: datetime) -> None:
        self.period_start = period_start
        self.used_tokens, self.used_usd = 0, 0.0
        self.warned = self.exhausted = False

    def fits(self, tokens: int, usd: float) -> bool:
        return not over(
            self.used_tokens + self.reserved_tokens + tokens,
            self.used_usd + self.reserved_usd + usd,
            self.tokens,
            self.usd,
        )

    def reserve(self, task: UUID, tokens: int, usd: float) -> None:
        self._reserved(task=str(task), tokens=tokens, usd=usd)

    @event("Reserved")
    def _reserved(self, task: str, tokens: int, usd: float) -> None:
        self.reservations[task] = [tokens, usd]

    def charge(self, task: UUID, tokens: int, usd: float) -> None:
        """The task's real use replaces its reservation; warnings and exhaustion follow."""
        self._charged(task=str(task), tokens=tokens, usd=usd)
        self.check_thresholds()

    @event("Charged")
    def _charged(self, task: str, tokens: int, usd: float) -> None:
        self.reservations.pop(task, None)
        self.used_tokens += tokens
        self.used_usd += usd

    def check_thresholds(self) -> None:
        used = self.share_used()
        if used >= self.warn_at and not self.warned:
            self._warned(share=round(used, 6))
        if used >= 1.0 and not self.exhausted:
            self._exhausted(share=round(used, 6))

    @event("Warned")
    def _warned(self, share: float) -> None:
        self.warned = True

    @event("Exhausted")
    def _exhausted(self, share: float) -> None:
        self.exhausted = True

    def record_stop(self, tasks: list[str], reason: str) -> None:
        """Record which running tasks this exhaustion ended (saved with their cancels)."""
        if tasks:
            self._stopped(tasks=sorted(tasks), reason=reason)

    @event("Stopped")
    def _stopped(self, tasks: list[str], reason: str) -> None:
        pass
