"""Agent health from heartbeats and probes: the state machine, on a hand-moved clock."""

from __future__ import annotations

from monitor.beats import beat
from monitor.clock import FakeClock
from whoosh_monitor.health import AgentInfo, FleetHealth, Verdict
from whoosh_shared.contract.config import MonitoringSettings
from whoosh_shared.contract.enums import AgentType

SETTINGS = MonitoringSettings(health_check_interval=5.0)  # dead after 3 s, probes every 1 s
SHELL = AgentInfo("shell", AgentType.CLI, healthy=True, probed=False)
LLM = AgentInfo("llm", AgentType.OLLAMA, healthy=True, probed=True)


def fleet(*agents: AgentInfo) -> tuple[FleetHealth, FakeClock]:
    clock = FakeClock()
    health = FleetHealth(SETTINGS, clock)
    health.set_agents(agents or (SHELL, LLM))
    return health, clock


def test_no_verdict_while_the_monitor_has_not_listened_for_a_window() -> None:
    health, clock = fleet()
    clock.advance(2.0)
    assert health.changes() == []  # nothing heard yet, but it may just have started


def test_an_agent_without_a_live_executor_of_its_type_is_unhealthy() -> None:
    health, clock = fleet()
    health.heartbeat(beat("cli-1"))
    clock.advance(3.5)
    assert health.changes() == [
        Verdict("shell", False, "no heartbeat from any cli executor for 3.5s"),
        Verdict("llm", False, "no ollama executor is sending heartbeats"),
    ]


def test_heartbeats_keep_an_agent_healthy_and_their_return_heals_it() -> None:
    health, clock = fleet(SHELL)
    for _ in range(10):
        clock.advance(1.0)
        health.heartbeat(beat("cli-1"))
        assert health.changes() == []
    clock.advance(3.1)
    (down,) = health.changes()
    assert not down.healthy
    health.set_agents([AgentInfo("shell", AgentType.CLI, healthy=False, probed=False)])
    assert health.changes() == []  # the coordinator has it: nothing more to say
    assert health.heartbeat(beat("cli-1")) is True  # back after being counted dead
    assert health.changes() == [Verdict("shell", True, None)]


def test_any_live_executor_of_the_type_serves_every_agent_of_that_type() -> None:
    health, clock = fleet(SHELL)
    health.heartbeat(beat("cli-1"))
    clock.advance(2.0)
    health.heartbeat(beat("cli-2"))
    clock.advance(2.0)  # cli-1 silent for 4 s, cli-2 for 2 s
    assert health.changes() == []
    assert health.dead_executors() == {"cli-1"}
    assert [s.executor_id for s in health.live_executors()] == ["cli-2"]


def test_a_slow_heartbeat_interval_stretches_the_dead_after_time() -> None:
    health, clock = fleet(SHELL)
    health.heartbeat(beat("cli-1", interval_s=2.0))
    clock.advance(4.9)  # 2.5 intervals = 5 s
    assert health.changes() == []
    clock.advance(0.2)
    assert [v.healthy for v in health.changes()] == [False]


def test_failed_probes_in_a_row_make_an_agent_unhealthy_and_one_success_heals() -> None:
    health, _ = fleet(LLM)
    health.heartbeat(beat("llm-1", types=(AgentType.OLLAMA, AgentType.OPENAI)))
    health.probe_result("llm", False, "connection refused")
    assert health.changes() == []  # one failure is not enough (probe_failures=2)
    health.probe_result("llm", False, "connection refused")
    assert health.changes() == [
        Verdict("llm", False, "server not answering (2 probes in a row): connection refused")
    ]
    health.probe_result("llm", True)
    assert health.verdict(LLM).healthy


def test_a_verdict_not_yet_recorded_is_not_resent_every_tick() -> None:
    health, clock = fleet(SHELL)
    health.heartbeat(beat("cli-1"))
    clock.advance(4.0)
    assert len(health.changes()) == 1
    clock.advance(0.5)
    assert health.changes() == []  # sent, the coordinator's view has not caught up yet
    clock.advance(2.0)
    assert len(health.changes()) == 1  # still not reflected: say it again


def test_an_agent_unhealthy_from_before_is_left_alone_until_there_is_evidence() -> None:
    sick = AgentInfo("shell", AgentType.CLI, healthy=False, probed=False)
    health, clock = fleet(sick)
    clock.advance(1.0)
    assert health.changes() == []
    health.heartbeat(beat("cli-1"))
    assert health.changes() == [Verdict("shell", True, None)]


def test_agents_that_left_are_forgotten_with_their_probe_state() -> None:
    health, _ = fleet(SHELL, LLM)
    health.probe_result("llm", False, "refused")
    health.set_agents([SHELL])
    assert health.probes == {}
    assert set(health.verdicts()) == {"shell"}
