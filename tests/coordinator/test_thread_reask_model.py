"""`reask_with` a stronger model on a real store (SQLite and PostgreSQL): the
participants are asked again with it where their server has it."""

from __future__ import annotations

from coordinator.core import Core
from coordinator.test_threads import AGENTS, answer, start, view
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t


def test_reask_with_a_stronger_model_where_the_server_has_it(core: Core) -> None:
    """`reask_with: {model}` asks every participant again, with that model where its
    agent's server lists it; a thread where none can run it raises an alert instead."""
    from whoosh_shared.contract.inventory import Inventory, ModelFacts

    for name in AGENTS:
        core.register(name, type="ollama", endpoint="http://127.0.0.1:9", model="small")
    for name in ("a1", "a2"):  # only these servers also have the large model
        found = Inventory(reachable=True, models={m: ModelFacts() for m in ("small", "large")})
        assert core.send(c.ReportInventory(name=name, inventory=found)).accepted
    rule = t.EscalationRule(
        name="stronger",
        when={"rounds_without_decision": 1},
        do=[t.Action(kind="reask_with", model="large")],
    )
    thread_id = start(core, escalation=[rule])
    for agent, value in zip(AGENTS, ("3", "4", "5"), strict=True):
        answer(core, thread_id, agent, f"ANSWER: {value}")
    second = view(core, thread_id).rounds[1].tasks
    models = {agent: core.task(task).model for agent, task in second.items()}
    assert models == {"a1": "large", "a2": "large", "a3": None}
    for agent in AGENTS:
        answer(core, thread_id, agent, "ANSWER: 4")
    assert view(core, thread_id).decision == "4"

    nobody = t.EscalationRule(
        name="huge",
        when={"rounds_without_decision": 1},
        do=[t.Action(kind="reask_with", model="huge")],
    )
    thread_id = start(core, escalation=[nobody], protocol=t.Protocol(max_rounds=1))
    for agent, value in zip(AGENTS, ("3", "4", "5"), strict=True):
        answer(core, thread_id, agent, f"ANSWER: {value}")
    alerts = [a for a in core.projection.alerts.listed(None, 10) if a.rule == "ThreadEscalated"]
    assert any("no participant can run model huge" in a.summary for a in alerts)
