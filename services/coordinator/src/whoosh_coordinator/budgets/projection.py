"""BudgetView per scope, folded from budget events; also the set of scopes with a budget,
which lets the hot path skip budgets entirely when none is configured."""

from __future__ import annotations

from uuid import UUID

from whoosh_shared.contract import collab_events as ce
from whoosh_shared.contract.budgets import BudgetView, Period
from whoosh_shared.contract.events import EventEnvelope

from whoosh_coordinator.budgets.rules import share


class BudgetProjection:
    def __init__(self) -> None:
        self.budgets: dict[UUID, BudgetView] = {}
        self.scopes: set[str] = set()
        self._reservations: dict[UUID, dict[str, tuple[int, float]]] = {}

    def apply(self, envelope: EventEnvelope, payload: object) -> None:
        key = envelope.aggregate_id
        if isinstance(payload, ce.BudgetCreated):
            self.budgets[key] = BudgetView(
                scope=payload.scope,
                tokens=None,
                usd=None,
                period=Period.NONE,
                warn_at=0.8,
                on_exhausted="refuse",
            )
            self.scopes.add(payload.scope)
            self._reservations[key] = {}
            return
        view = self.budgets.get(key)
        if view is None:
            return
        held = self._reservations[key]
        match payload:
            case ce.BudgetSet():
                view.tokens, view.usd, view.period = (
                    payload.tokens,
                    payload.usd,
                    Period(payload.period),
                )
                view.warn_at, view.on_exhausted = payload.warn_at, payload.on_exhausted
                view.warned = view.exhausted = False
            case ce.BudgetPeriodReset(period_start=start):
                view.period_start, view.used_tokens, view.used_usd = start, 0, 0.0
                view.warned = view.exhausted = False
            case ce.BudgetReserved(task=task, tokens=tokens, usd=usd):
                held[task] = (tokens, usd)
            case ce.BudgetCharged(task=task, tokens=tokens, usd=usd):
                held.pop(task, None)
                view.used_tokens += tokens
                view.used_usd += usd
            case ce.BudgetWarned():
                view.warned = True
            case ce.BudgetExhausted():
                view.exhausted = True
        view.reserved_tokens = sum(t for t, _ in held.values())
        view.reserved_usd = sum(u for _, u in held.values())
        view.share_used = max(share(view.used_tokens, view.tokens), share(view.used_usd, view.usd))

    def listed(self) -> list[BudgetView]:
        return sorted(self.budgets.values(), key=lambda v: v.scope)
