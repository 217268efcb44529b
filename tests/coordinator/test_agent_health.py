"""Agent health verdicts (the monitor's): recorded on change, honoured by the scheduler."""

from __future__ import annotations

from coordinator.core import Core
from coordinator.factories import NOW, agent_view, task_view
from whoosh_coordinator.scheduling.scheduler import Needs, eligible, plan
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.enums import TaskStatus


def test_an_unhealthy_agent_gets_no_work_but_still_counts_for_admission() -> None:
    sick = agent_view("sick").model_copy(update={"healthy": False})
    assert plan([task_view(1)], [sick], NOW) == []
    assert eligible(Needs(), sick, ignore_state=True)
    assert [p.agent_name for p in plan([task_view(1)], [sick, agent_view("ok")], NOW)] == ["ok"]


def test_health_changes_are_events_and_work_waits_for_recovery(core: Core) -> None:
    core.register("a1")
    before = core.events()
    down = c.ReportAgentHealth(name="a1", healthy=False, reason="no heartbeat for 5s")
    assert core.send(down).accepted
    assert core.send(down).accepted  # the same verdict again
    assert core.events() == before + 1
    view = core.projection.agent_by_name("a1")
    assert (view.healthy, view.health_reason) == (False, "no heartbeat for 5s")
    task_id = core.submit()  # accepted: the agent may come back
    assert core.task(task_id).status is TaskStatus.QUEUED
    assert core.send(c.ReportAgentHealth(name="a1", healthy=True)).accepted
    assert core.task(task_id).status is TaskStatus.ASSIGNED
    assert core.projection.agent_by_name("a1").health_reason is None


def test_health_of_an_unknown_agent_is_rejected(core: Core) -> None:
    reply = core.send(c.ReportAgentHealth(name="ghost", healthy=False))
    assert reply.code == "not_found"
