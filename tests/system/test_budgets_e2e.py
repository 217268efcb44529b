"""Budgets end to end with real processes: two coordinators on one PostgreSQL store, an
LLM executor, Ollama doubles that report real token counts.

- 20 tasks submitted at once against a budget that holds 7: 7 run, 13 are refused at
  assignment naming the budget, the use never passes the limit, and the next submit is
  refused.
- `on_exhausted: stop`: one answer longer than its estimate uses the budget up, and the
  two answers still streaming are cancelled (their streams closed) with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from harness import PgSchema, eventually, get_task, wait_for_coordinator, wait_for_status
from nats.js.errors import NotFoundError
from system.llm_stack import NO_CONFIG_FILE, MakeDouble, hold_in_memory, register
from whoosh_coordinator.budgets.rules import estimate_tokens
from whoosh_executor_ollama.service import DURABLES
from whoosh_shared.contract import subjects
from whoosh_shared.contract.budgets import BudgetList, ListBudgets, SetBudget
from whoosh_shared.contract.commands import LlmOptions, SubmitTask
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.runtime.bus import Bus

pytestmark = pytest.mark.timeout(180)
PROMPT = "abc abc abc"  # 3 words: the double counts 3 prompt tokens, the estimate says 3
OUT = 8
LLM = LlmOptions(options={"num_predict": OUT})
ESTIMATE = estimate_tokens(PROMPT, LLM.model_dump(mode="json"))
REPLY = " ".join(f"w{i}" for i in range(600))


@pytest.fixture
async def two_coordinators(bus: Bus, spawn, nats_url: str) -> AsyncIterator[None]:
    schema = PgSchema()
    for _ in range(2):
        spawn(
            "whoosh_coordinator", "serve", "--nats", nats_url, "--store", schema.url,
            env=NO_CONFIG_FILE,
        )  # fmt: skip
    executor = spawn(
        "whoosh_executor_ollama", "--nats", nats_url, "--executor-id", "llm-budget",
        env={**NO_CONFIG_FILE, "WHOOSH__EXECUTOR__MAX_PARALLEL": "24"},
    )  # fmt: skip
    try:
        await wait_for_coordinator(bus)
        await eventually(lambda: "executor ready" in executor.output(), timeout=30)
        yield
    finally:
        executor.stop()
        for durable in DURABLES.values():
            with contextlib.suppress(NotFoundError):
                await bus.js.delete_consumer(subjects.WORK_STREAM, durable)
        schema.drop()


async def global_budget(bus: Bus):
    reply = await bus.ask(ListBudgets())
    return next(b for b in BudgetList.model_validate(reply.result).budgets if b.scope == "global")


async def test_twenty_at_once_never_overspend_and_the_next_is_refused(
    bus: Bus, two_coordinators: None, make_double: MakeDouble
) -> None:
    double = make_double(reply=REPLY, parallel=24)
    hold_in_memory(double)
    await register(bus, "gpu", double, max_concurrent=20)
    assert (await bus.send(SetBudget(scope="global", tokens=ESTIMATE * 7))).accepted
    replies = await asyncio.gather(
        *(bus.send(SubmitTask(prompt=PROMPT, llm=LLM, capabilities=["chat"])) for _ in range(20))
    )
    # A submit is refused once the reservations of those placed already fill the budget;
    # a task accepted but not placeable is refused at assignment. Either names it.
    at_submit = [r for r in replies if not r.accepted]
    assert all(r.code == "limited" for r in at_submit)
    assert all(r.reason.startswith("budget 'global' is exhausted") for r in at_submit)
    ids = [UUID(r.ids["task_id"]) for r in replies if r.accepted]
    peak = 0
    views = []
    for task_id in ids:
        view = await wait_for_status(
            bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED, timeout=60
        )
        views.append(view)
        budget = await global_budget(bus)
        peak = max(peak, budget.used_tokens + budget.reserved_tokens)
        if peak > ESTIMATE * 7:
            from whoosh_coordinator.budgets.domain import budget_id
            from whoosh_shared.contract.queries import EventPage, GetEvents

            page = EventPage.model_validate(
                (await bus.ask(GetEvents(aggregate_id=budget_id("global"), limit=500))).result
            )
            history = [(e.notification_id, e.version, e.type, e.data) for e in page.events]
        assert peak <= ESTIMATE * 7, "\n".join(map(str, [budget, *history]))
    done = [v for v in views if v.status is TaskStatus.COMPLETED]
    refused = [v for v in views if v.status is TaskStatus.FAILED]
    assert (len(done), len(refused) + len(at_submit)) == (7, 13)
    assert all(v.reason.startswith("budget 'global' ") for v in refused), refused
    budget = await global_budget(bus)
    assert (budget.used_tokens, budget.reserved_tokens) == (ESTIMATE * 7, 0)
    assert budget.exhausted
    nxt = await bus.send(SubmitTask(prompt=PROMPT, llm=LLM, capabilities=["chat"]))
    assert nxt.code == "limited"
    assert nxt.reason == (
        f"budget 'global' is exhausted: {ESTIMATE * 7} of {ESTIMATE * 7} tokens used or reserved"
    )


async def test_stop_cancels_the_answers_still_streaming(
    bus: Bus, two_coordinators: None, make_double: MakeDouble
) -> None:
    fast = make_double(reply=REPLY + REPLY, tokens_per_s=5000)  # 1200 tokens
    slow = [make_double(reply=REPLY, tokens_per_s=15) for _ in range(2)]  # ~40 s each
    hold_in_memory(fast, *slow)
    for name, double in (("fast", fast), ("slow-1", slow[0]), ("slow-2", slow[1])):
        await register(bus, name, double)
    runaway = estimate_tokens(PROMPT, None)  # no num_predict: 256 out are reserved
    limit = runaway * 3  # holds all three reservations; one 1200-token answer uses it up
    assert (await bus.send(SetBudget(scope="global", tokens=limit, on_exhausted="stop"))).accepted
    streaming = []
    for name in ("slow-1", "slow-2"):
        reply = await bus.send(SubmitTask(prompt=PROMPT, agent=name))
        assert reply.accepted, reply.reason
        streaming.append(UUID(reply.ids["task_id"]))
    for task_id in streaming:
        await wait_for_status(bus, task_id, TaskStatus.RUNNING, timeout=30)
    await eventually(lambda: all(d.active for d in slow), timeout=20, what="both streaming")
    reply = await bus.send(SubmitTask(prompt=PROMPT, agent="fast"))
    assert reply.accepted, reply.reason
    first = await wait_for_status(bus, UUID(reply.ids["task_id"]), TaskStatus.COMPLETED)
    used = first.usage.tokens_in + first.usage.tokens_out
    assert used > limit
    for task_id in streaming:
        view = await wait_for_status(bus, task_id, TaskStatus.CANCELLED, timeout=20)
        assert view.reason.startswith(
            f"budget 'global' is exhausted ({used} of {limit} tokens used"
        )
        assert view.reason.endswith("and says on_exhausted: stop")
    await eventually(lambda: not any(d.active for d in slow), timeout=20,
                     what="the executor to close the cancelled streams")  # fmt: skip
    budget = await global_budget(bus)
    assert budget.exhausted and budget.reserved_tokens == 0
    for task_id in streaming:  # not restarted: still cancelled after the executor's report
        assert (await get_task(bus, task_id)).status is TaskStatus.CANCELLED
