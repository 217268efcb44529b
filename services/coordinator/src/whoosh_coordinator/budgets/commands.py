"""Budget commands and the coordinator's three budget moments: refuse at submit,
reserve at assignment (same transaction), charge at the task's end (same transaction).

Registered in the coordinator's handler (commands.py); the budgets that exist are known
from the projection, so a task with no budget in its scopes loads nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from whoosh_shared.contract.alerts import alert_id
from whoosh_shared.contract.budgets import SetBudget
from whoosh_shared.contract.commands import CommandReply, RejectCode

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.alerts.domain import Alert
from whoosh_coordinator.budgets.domain import Budget, budget_id
from whoosh_coordinator.budgets.rules import cost_usd, estimate_tokens, scopes_of
from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.stopping import stop_tasks
from whoosh_coordinator.tasks.domain import Task

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler

Prices = dict[str, dict[str, float]]


def set_budget(handler: CommandHandler, cmd: SetBudget) -> CommandReply:
    budget = _load(handler, cmd.scope) or Budget(scope=cmd.scope)
    budget.set(cmd.tokens, cmd.usd, cmd.period.value, cmd.warn_at, cmd.on_exhausted, cmd.actor)
    budget.roll(handler.clock())
    budget.check_thresholds()  # a limit lowered below the use is exhausted at once
    was = (False, False)
    handler.save(budget, *_alerts(handler, budget, was), *_stop_if_told(handler, budget, was))
    return CommandReply.accept(budget_id=str(budget.id))


def _load(handler: CommandHandler, scope: str) -> Budget | None:
    try:
        budget = handler.aggregates.get(budget_id(scope))
    except AggregateNotFoundError:
        return None
    return budget if isinstance(budget, Budget) else None


def _budgets(handler: CommandHandler, scopes: list[str]) -> list[Budget]:
    known = handler.projection_budgets()
    return [
        b for scope in scopes if (known is None or scope in known) and (b := _load(handler, scope))
    ]


def refuse_if_exhausted(
    handler: CommandHandler, actor: str, agent: str | None, origin: dict[str, str] | None = None
) -> None:
    """At submit: new work is refused while any of its budgets is used up."""
    for budget in _budgets(handler, scopes_of(actor, agent, origin)):
        budget.roll(handler.clock())
        if reason := budget.refusal():
            raise Rejected(RejectCode.LIMITED, reason)


def reserve(handler: CommandHandler, task: Task, agent: Agent) -> list[Aggregate] | None:
    """Reserve the task's estimate on every budget of its scopes, to be saved with its
    assignment; None when one cannot hold it (the caller ends the task with the reason)."""
    budgets = _budgets(
        handler, scopes_of(getattr(task, "actor", "system"), agent.name, task.origin)
    )
    if not budgets:
        return []
    tokens = estimate_tokens(task.prompt, task.llm)
    usd = cost_usd(tokens, 0, 0.0, _price(handler.prices, agent))
    for budget in budgets:
        budget.roll(handler.clock())
        if not budget.fits(tokens, usd):
            reason = budget.refusal() or (
                f"budget '{budget.scope}' cannot hold this task's estimate ({tokens} tokens, "
                f"${usd:.4f}): {budget.used_tokens + budget.reserved_tokens} of "
                f"{budget.tokens} tokens, ${budget.used_usd + budget.reserved_usd:.4f} of "
                f"${budget.usd} used or reserved"
            )
            task.refuse(reason)
            return None
    for budget in budgets:
        budget.reserve(task.id, tokens, usd)
    return list(budgets)


def _price(prices: Prices, agent: Agent) -> dict[str, float] | None:
    spec: dict[str, Any] = agent.spec
    return prices.get(spec.get("name", "")) or prices.get(spec.get("model") or "")


def charge_listener(handler: CommandHandler):
    """At a task's end: its real use (reported tokens; the CLI's cost or the price table)
    replaces its reservation on every budget that holds one or covers it."""

    def on_task_end(task: Task) -> Sequence[Aggregate]:
        if handler.projection_budgets() == set():
            return []
        usage = getattr(task, "usage", {}) or getattr(task, "kept_usage", {}) or {}
        return charge(handler, task, usage)

    return on_task_end


def charge(handler: CommandHandler, task: Task, usage: dict[str, Any]) -> list[Aggregate]:
    """Charge `usage` to the task's budgets (dropping its reservation); a budget this
    makes exhausted warns, and with `on_exhausted: stop` ends what still runs on it."""
    tokens_in, tokens_out = int(usage.get("tokens_in", 0)), int(usage.get("tokens_out", 0))
    reported = float(usage.get("cost_usd", 0.0))
    changed: list[Aggregate] = []
    agent_name = task.agent_name or (task.tried_agents[-1] if task.tried_agents else None)
    for budget in _budgets(
        handler, scopes_of(getattr(task, "actor", "system"), agent_name, task.origin)
    ):
        if str(task.id) not in budget.reservations and not (tokens_in or tokens_out or reported):
            continue
        prices = handler.prices
        price = prices.get(agent_name or "") or prices.get(task.model or "")
        usd = cost_usd(tokens_in, tokens_out, reported, price)
        was = (budget.warned, budget.exhausted)
        budget.charge(task.id, tokens_in + tokens_out, usd)
        changed += [budget, *_alerts(handler, budget, was), *_stop_if_told(handler, budget, was)]
    return changed


def charge_kept(handler: CommandHandler, task: Task, usage: dict[str, Any]) -> list[Aggregate]:
    """A stopped task's late report: what it had used by then is real use too (its
    reservation was dropped when it was stopped), charged once, with the kept output."""
    if handler.projection_budgets() == set():
        return []
    return charge(handler, task, usage)


def _stop_if_told(
    handler: CommandHandler, budget: Budget, was: tuple[bool, bool]
) -> list[Aggregate]:
    """`on_exhausted: stop`: the moment the budget is used up, every task still holding
    a reservation on it is cancelled in this same transaction, the reason naming the
    budget, its limit and its use. New work was refused already by the reservation."""
    if was[1] or not budget.stops_running_work:
        return []
    running = list(budget.reservations)
    if not running:
        return []
    reason = budget.stop_reason()
    budget.record_stop(running, reason)
    return stop_tasks(handler, running, reason, actor=f"budget {budget.scope}")


def _alerts(handler: CommandHandler, budget: Budget, was: tuple[bool, bool]) -> list[Aggregate]:
    """An alert (the existing alert path: webhook, dashboard) when the budget crossed its
    warning share or its limit just now."""
    raised = []
    for crossed, before, rule, severity in (
        (budget.warned, was[0], "BudgetWarning", "warning"),
        (budget.exhausted, was[1], "BudgetExhausted", "critical"),
    ):
        if not crossed or before:
            continue
        labels = {"scope": budget.scope}
        try:
            alert = handler.aggregates.get(alert_id(rule, labels))
        except AggregateNotFoundError:
            alert = Alert(rule=rule, labels=labels)
        summary = f"budget '{budget.scope}' at {budget.share_used():.0%} of its limit"
        fields = {
            "severity": severity,
            "summary": summary,
            "value": budget.share_used(),
            "threshold": budget.warn_at if rule == "BudgetWarning" else 1.0,
        }
        if alert.raise_(fields, actor="coordinator"):  # type: ignore[union-attr]
            raised.append(alert)
    return raised
