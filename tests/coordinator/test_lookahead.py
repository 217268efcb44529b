"""Holding work for a busy agent that would still finish it much sooner (lookahead.py)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from coordinator.factories import NOW, agent_view, task_view
from pytest import approx
from whoosh_coordinator.scheduling.explain import explain
from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import Needs, choose, plan
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.inventory import SpeedStats, model_key
from whoosh_shared.contract.queries import AgentView, TaskView


def server(name: str, decode_tps: float, slots: int, running: list[TaskView]) -> AgentView:
    view = agent_view(
        name, type="ollama", endpoint="http://x", model="m", max_concurrent=slots, load=0
    )
    view.speeds[model_key("m")] = SpeedStats(samples=3, decode_tps=decode_tps, prefill_tps=1e6)
    view.in_flight = [t.id for t in running]
    return view


def running(output_tokens: int, started_s_ago: float) -> TaskView:
    return task_view(
        0,
        id=uuid4(),
        status=TaskStatus.RUNNING,
        llm={"options": {"num_predict": output_tokens}},
        started_at=NOW - timedelta(seconds=started_s_ago),
    )


def fleet(fast_remaining_tokens: int) -> tuple[AgentView, AgentView, dict]:
    """A full fast server (100 tok/s, 1 slot) whose task has `fast_remaining_tokens` to go,
    and a free slow one (10 tok/s)."""
    busy = running(100 + fast_remaining_tokens, started_s_ago=1.0)
    fast, slow = server("fast", 100.0, 1, [busy]), server("slow", 10.0, 1, [])
    return fast, slow, {busy.id: busy}


def test_long_work_waits_for_a_fast_agent_that_frees_soon() -> None:
    fast, slow, tasks = fleet(fast_remaining_tokens=50)  # free in 0.5 s
    forecast = SlotForecast.of([fast, slow], tasks, NOW)
    assert forecast.free_in == {fast.id: [approx(0.5, abs=1e-3)], slow.id: []}
    long_answer = Needs(output_tokens=200)  # fast: 0.5 + 2 s; slow: 20 s
    assert choose(long_answer, [fast, slow], {fast.id: 1, slow.id: 0}, forecast=forecast) is None
    promised = forecast.free_in[fast.id]  # the slot is promised: the next sees it after
    assert forecast.held and promised == [approx(2.5, abs=1e-3)]


def test_work_goes_to_the_free_agent_when_waiting_would_not_pay() -> None:
    fast, slow, tasks = fleet(fast_remaining_tokens=3000)  # busy for 30 s more
    forecast = SlotForecast.of([fast, slow], tasks, NOW)
    chosen = choose(
        Needs(output_tokens=20), [fast, slow], {fast.id: 1, slow.id: 0}, forecast=forecast
    )
    assert chosen is slow and not forecast.held


def test_a_plan_promises_each_slot_once() -> None:
    fast, slow, tasks = fleet(fast_remaining_tokens=50)
    forecast = SlotForecast.of([fast, slow], tasks, NOW)
    queued = [task_view(i, llm={"options": {"num_predict": 200}}) for i in (1, 2, 3)]
    placed = plan(queued, [fast, slow], NOW, forecast=forecast)
    # the first waits for fast (2.5 s); the second would wait till 4.5 s on fast: slow's
    # 20 s is still worse, so it waits too; the third likewise: nothing goes to slow yet
    assert placed == [] and forecast.free_in[fast.id] == [approx(6.5, abs=1e-3)]


def test_overrun_work_is_assumed_to_run_as_long_again() -> None:
    busy = running(100, started_s_ago=5.0)  # estimated 1 s, running for 5 s
    fast = server("fast", 100.0, 1, [busy])
    forecast = SlotForecast.of([fast], {busy.id: busy}, NOW)
    assert forecast.free_in == {fast.id: [approx(5.0, abs=1e-3)]}


def test_no_estimate_means_no_waiting() -> None:
    fast, slow, _ = fleet(fast_remaining_tokens=50)
    forecast = SlotForecast.of([fast, slow], {}, NOW)  # the running task is not known here
    assert fast.id not in forecast.free_in
    assert choose(Needs(output_tokens=200), [fast, slow], {fast.id: 1, slow.id: 0},
                  forecast=forecast) is slow  # fmt: skip
    unmeasured = server("new", 10.0, 1, [])
    unmeasured.speeds.clear()  # estimates 0 s: tried (and measured) rather than held back
    forecast = SlotForecast.of([fast, unmeasured], {}, NOW)
    assert choose(Needs(output_tokens=200), [fast, unmeasured], {fast.id: 1, unmeasured.id: 0},
                  forecast=forecast) is unmeasured  # fmt: skip


def test_explain_says_the_work_waits_for_the_busy_agent() -> None:
    fast, slow, tasks = fleet(fast_remaining_tokens=50)
    forecast = SlotForecast.of([fast, slow], tasks, NOW)
    found = explain(Needs(output_tokens=200), [fast, slow], forecast=forecast)
    assert found.chosen is None
    assert found.decision.startswith("waits for fast: busy, a slot expected free in ~0.5 s")
    assert forecast.free_in[fast.id] == [approx(0.5, abs=1e-3)]  # explaining promised nothing


def test_a_pass_that_fills_the_fast_agent_still_waits_for_it() -> None:
    """A burst: the first work takes the fast agent's free slot; the second, placed in the
    same pass, waits for that slot (0.2 s, then 2 s) rather than take the slow agent's 20 s."""
    fast, slow = server("fast", 100.0, 1, []), server("slow", 10.0, 1, [])
    forecast = SlotForecast.of([fast, slow], {}, NOW)
    queued = [task_view(1, llm={"options": {"num_predict": 20}}),
              task_view(2, llm={"options": {"num_predict": 200}})]  # fmt: skip
    placed = plan(queued, [fast, slow], NOW, forecast=forecast)
    assert [p.agent_name for p in placed] == ["fast"]
    assert forecast.held and forecast.free_in[fast.id] == [approx(2.2, abs=1e-3)]


def test_work_without_an_estimate_placed_in_the_pass_ends_the_forecast_for_its_agent() -> None:
    fast = server("fast", 100.0, 2, [])
    forecast = SlotForecast.of([fast], {}, NOW)
    fast.speeds.clear()  # the model it runs is unmeasured: nobody can say when it frees
    forecast.took(Needs(output_tokens=20), fast, 0)
    assert fast.id not in forecast.free_in
