"""Budgets on a real store: reserved with the assignment, charged at the end, a warning
alert at 80 %, refusals that name the budget, and no overspend with 20 concurrent tasks
(also across two coordinators)."""

from __future__ import annotations

from uuid import UUID

import pytest
from coordinator.core import Core
from coordinator.test_two_writers import handler
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.budgets.rules import estimate_tokens
from whoosh_coordinator.follower import Follower
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.budgets import Period, SetBudget
from whoosh_shared.contract.enums import TaskStatus

ESTIMATE = estimate_tokens("hello", None)  # 258: 5 chars / 4 + 1, plus 256 out


def budget(core: Core, scope: str = "global"):
    return next(b for b in core.projection.budgets.listed() if b.scope == scope)


def finish(core: Core, task_id: UUID, tokens: int, cost_usd: float = 0.0) -> None:
    attempt = core.task(task_id).attempt
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="x")).accepted
    usage = c.Usage(tokens_in=tokens // 2, tokens_out=tokens - tokens // 2, cost_usd=cost_usd)
    assert core.send(
        c.CompleteTask(task_id=task_id, attempt=attempt, output="ok", usage=usage)
    ).accepted


def test_reserve_charge_warn_and_refuse(core: Core) -> None:
    core.register("w", max_concurrent=4)
    assert core.send(SetBudget(scope="global", tokens=1000)).accepted
    first = core.submit()
    assert budget(core).reserved_tokens == ESTIMATE
    finish(core, first, tokens=700)
    view = budget(core)
    assert (view.used_tokens, view.reserved_tokens, view.warned) == (700, 0, False)
    second = core.submit()
    finish(core, second, tokens=150)
    assert budget(core).warned and not budget(core).exhausted
    alerts = {a.rule: a for a in core.projection.alerts.listed(None, 10)}
    assert alerts["BudgetWarning"].labels == {"scope": "global"}
    third = core.submit()  # 850 used + 258 reserved > 1000: cannot be held
    task = core.task(third)
    assert task.status is TaskStatus.FAILED
    assert task.reason.startswith("budget 'global' cannot hold this task's estimate (258 tokens")
    assert budget(core).used_tokens == 850
    core.send(SetBudget(scope="global", tokens=850))
    refused = core.send(c.SubmitTask(prompt="hello"))
    assert refused.code == "limited"
    assert refused.reason == "budget 'global' is exhausted: 850 of 850 tokens used or reserved"


def test_usd_from_reported_cost_and_price_table(core: Core) -> None:
    core.register("cloud", max_concurrent=2)
    core.handler.prices = {"cloud": {"in": 3.0, "out": 15.0}}
    assert core.send(SetBudget(scope="agent:cloud", usd=1.0, period=Period.MONTH)).accepted
    finish(core, core.submit(), tokens=2000)  # 1000 in, 1000 out: $0.003 + $0.015
    assert budget(core, "agent:cloud").used_usd == pytest.approx(0.018)
    finish(core, core.submit(), tokens=10, cost_usd=0.5)  # the CLI's own figure wins
    assert budget(core, "agent:cloud").used_usd == pytest.approx(0.518)
    assert budget(core, "agent:cloud").period_start is not None


def test_twenty_concurrent_tasks_never_overspend(core: Core) -> None:
    core.register("big", max_concurrent=20)
    limit = ESTIMATE * 10 + 5
    assert core.send(SetBudget(scope="global", tokens=limit)).accepted
    replies = core.handler.handle_batch([c.SubmitTask(prompt="hello") for _ in range(20)])
    core.assigner.assign_pending()
    ids = [UUID(r.ids["task_id"]) for r in replies if r.accepted]
    assert len(ids) == 20
    running = [i for i in ids if core.task(i).status is TaskStatus.ASSIGNED]
    refused = [i for i in ids if core.task(i).status is TaskStatus.FAILED]
    assert (len(running), len(refused)) == (10, 10)
    assert budget(core).reserved_tokens == ESTIMATE * 10 <= limit
    for task_id in running:
        finish(core, task_id, tokens=ESTIMATE)  # each used what it reserved
    view = budget(core)
    assert (view.used_tokens, view.reserved_tokens) == (ESTIMATE * 10, 0)
    assert view.used_tokens <= limit


def test_two_coordinators_share_one_budget(store_url: str) -> None:
    a, b = handler(store_url), handler(store_url)
    try:
        a.handle(c.RegisterAgent(spec=AgentSpec(name="big", command=["cat"], max_concurrent=20)))
        a.handle(SetBudget(scope="global", tokens=ESTIMATE * 5))
        for h in (a, b):
            Follower(h.store, h.projection).catch_up()
        submitted = 0
        for i in range(20):  # alternate writers; each decides from its remembered copies
            h = (a, b)[i % 2]
            Follower(h.store, h.projection).catch_up()
            submitted += h.handle(c.SubmitTask(prompt="hello")).accepted
            Assigner(h, timeout_grace_s=0).assign_pending()
        Follower(a.store, a.projection).catch_up()
        view = a.projection.budgets.listed()[0]
        assert view.reserved_tokens + view.used_tokens <= ESTIMATE * 5
        assigned = [t for t in a.projection.tasks.values() if t.status is TaskStatus.ASSIGNED]
        assert len(assigned) == 5 and view.reserved_tokens == ESTIMATE * 5
        assert submitted >= 5
    finally:
        a.store.close()
        b.store.close()


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SetBudget(scope="global", tokens=-1)
    with pytest.raises(ValueError, match="give a limit"):
        SetBudget(scope="global")
    with pytest.raises(ValueError, match="scope"):
        SetBudget(scope="planet:earth", tokens=5)
