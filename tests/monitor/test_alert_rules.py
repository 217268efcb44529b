"""Alert rule evaluation with `for` durations, on a hand-moved clock."""

from __future__ import annotations

from monitor.clock import FakeClock
from whoosh_monitor.alert_rules import Reading, RuleEngine, labels_of
from whoosh_shared.contract.alerts import AlertMetric, AlertRule, Severity

CPU = AlertRule(name="HostCpuHigh", metric=AlertMetric.CPU_USAGE, threshold=85, for_s=30)
SLOW = AlertRule(
    name="UnderSpeed",
    metric=AlertMetric.TOKENS_PER_SECOND_UNDER_TARGET,
    op="<",
    threshold=1.0,
    for_s=0,
    severity=Severity.CRITICAL,
)
A = labels_of(host="a")


def cpu(value: float, labels=A) -> Reading:
    return Reading(AlertMetric.CPU_USAGE, labels, value)


def kinds(transitions) -> list[tuple[str, str, dict[str, str]]]:
    return [(t.kind, t.rule.name, t.labels) for t in transitions]


def test_a_condition_fires_only_after_holding_for_its_duration_and_only_once() -> None:
    clock = FakeClock()
    engine = RuleEngine([CPU], clock)
    assert engine.evaluate([cpu(97)]) == []
    clock.advance(29)
    assert engine.evaluate([cpu(90)]) == []
    clock.advance(1)
    (raised,) = engine.evaluate([cpu(91)])
    assert (raised.kind, raised.value, raised.text) == ("raise", 91, "cpu_usage 91 > 85 (host=a)")
    for _ in range(5):
        clock.advance(10)
        assert engine.evaluate([cpu(99)]) == []  # firing: de-duplicated
    assert engine.firing() == {("HostCpuHigh", A): 99}


def test_a_dip_before_the_duration_restarts_the_wait_and_resolves_nothing() -> None:
    clock = FakeClock()
    engine = RuleEngine([CPU], clock)
    engine.evaluate([cpu(97)])
    clock.advance(20)
    assert engine.evaluate([cpu(50)]) == []  # pending only: no resolve
    clock.advance(20)
    assert engine.evaluate([cpu(97)]) == []
    clock.advance(29)
    assert engine.evaluate([cpu(97)]) == []


def test_a_firing_alert_resolves_when_the_condition_clears() -> None:
    clock = FakeClock()
    engine = RuleEngine([CPU], clock)
    engine.evaluate([cpu(97)])
    clock.advance(30)
    engine.evaluate([cpu(97)])
    (resolved,) = engine.evaluate([cpu(40)])
    assert (resolved.kind, resolved.text) == ("resolve", "condition cleared")
    assert engine.evaluate([cpu(40)]) == []


def test_a_series_that_is_no_longer_reported_resolves() -> None:
    clock = FakeClock()
    engine = RuleEngine([CPU], clock)
    b = labels_of(host="b")
    engine.evaluate([cpu(97), cpu(97, b)])
    clock.advance(30)
    assert len(engine.evaluate([cpu(97), cpu(97, b)])) == 2
    assert kinds(engine.evaluate([cpu(97)])) == [("resolve", "HostCpuHigh", {"host": "b"})]
    assert engine.evaluate([cpu(97)]) == []


def test_each_series_and_rule_is_its_own_alert_and_ops_compare_as_written() -> None:
    clock = FakeClock()
    engine = RuleEngine([CPU, SLOW], clock)
    slow = Reading(AlertMetric.TOKENS_PER_SECOND_UNDER_TARGET, labels_of(agent="x"), 0.5)
    fast = Reading(AlertMetric.TOKENS_PER_SECOND_UNDER_TARGET, labels_of(agent="y"), 1.0)
    assert kinds(engine.evaluate([slow, fast, cpu(10)])) == [
        ("raise", "UnderSpeed", {"agent": "x"})
    ]


def test_an_alert_left_firing_by_an_earlier_monitor_resolves_if_not_true_now() -> None:
    clock = FakeClock()
    engine = RuleEngine([CPU], clock)
    assert engine.adopt_firing("HostCpuHigh", {"host": "a"})
    assert not engine.adopt_firing("RuleNoLongerConfigured", {})
    assert engine.evaluate([cpu(97)]) == []  # still true: not raised a second time
    assert kinds(engine.evaluate([cpu(10)])) == [("resolve", "HostCpuHigh", {"host": "a"})]


def test_a_summary_template_fills_in_value_threshold_and_labels() -> None:
    rule = CPU.model_copy(update={"summary": "{host} at {value}% (limit {threshold}%, {nope})"})
    assert rule.describe({"host": "a"}, 97.123) == "a at 97.12% (limit 85%, {nope})"
