"""Alert rules in whoosh.yaml: defaults from the seeds' thresholds, and every bad rule refused
at load with its line named."""

from __future__ import annotations

import pytest
from whoosh_shared.contract.alerts import DEFAULT_RULES, AlertMetric, Severity, parse_duration
from whoosh_shared.contract.config import ConfigError, parse_config_text


def load(text: str):
    return parse_config_text(text, "whoosh.yaml").monitoring


def test_the_defaults_carry_the_seeds_thresholds_and_cover_every_metric() -> None:
    rules = {r.metric: r for r in load("").rules()}
    assert set(rules) == set(AlertMetric)
    assert rules[AlertMetric.CPU_USAGE].threshold == 85
    assert rules[AlertMetric.MEMORY_USAGE].threshold == 90
    assert rules[AlertMetric.GPU_USAGE].threshold == 95
    assert rules[AlertMetric.RESPONSE_TIME].threshold == 60
    assert all(r.severity in Severity for r in DEFAULT_RULES)


def test_seed_style_thresholds_and_own_rules_combine() -> None:
    monitoring = load(
        """
monitoring:
  alert_thresholds: {cpu_usage: 70, response_time: 30}
  alert_rules:
    - name: QueueBacklog          # replaces the default of that name
      metric: queue_depth
      threshold: 5
      for: 30s
      severity: critical
    - name: GpuWarm
      metric: gpu_temperature
      op: ">="
      threshold: 75
      for: 1.5m
"""
    )
    rules = {r.name: r for r in monitoring.rules()}
    assert rules["HostCpuHigh"].threshold == 70
    assert rules["AgentSlow"].threshold == 30
    assert (rules["QueueBacklog"].threshold, rules["QueueBacklog"].for_s) == (5, 30)
    assert rules["QueueBacklog"].severity is Severity.CRITICAL
    assert (rules["GpuWarm"].op, rules["GpuWarm"].for_s) == (">=", 90)
    only_mine = load(
        "monitoring:\n  default_alert_rules: false\n"
        "  alert_rules: [{name: X, metric: cpu_usage, threshold: 1}]\n"
    )
    assert [r.name for r in only_mine.rules()] == ["X"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: cpu_usgae\n"
            "      threshold: 1\n",
            "monitoring.alert_rules.0.metric (line 4)",
        ),
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: cpu_usage\n"
            "      threshold: 120\n",
            "cpu_usage is a percentage: threshold 120 is not 0..100",
        ),
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: queue_depth\n"
            "      threshold: lots\n",
            "monitoring.alert_rules.0.threshold (line 5)",
        ),
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: queue_depth\n"
            "      threshold: -1\n",
            "threshold -1 of queue_depth is negative",
        ),
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: queue_depth\n"
            "      threshold: .nan\n",
            "is not a finite number",
        ),
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: queue_depth\n"
            "      threshold: 1\n      for: soon\n",
            "'soon' is not a duration",
        ),
        (
            "monitoring:\n  alert_rules:\n    - name: A\n      metric: queue_depth\n"
            "      threshold: 1\n      severity: loud\n",
            "monitoring.alert_rules.0.severity (line 6)",
        ),
        (
            "monitoring:\n  alert_rules:\n    - {name: A, metric: queue_depth, threshold: 1}\n"
            "    - {name: A, metric: cpu_usage, threshold: 1}\n",
            "alert rule names must be unique: A",
        ),
        (
            "monitoring:\n  alert_thresholds:\n    cpu_usage: 85\n    gpu_usgae: 95\n",
            "monitoring.alert_thresholds.gpu_usgae.[key] (line 4)",
        ),
        (
            "monitoring:\n  alert_thresholds:\n    memory_usage: 900\n",
            "memory_usage is a percentage",
        ),
        (
            "monitoring:\n  alert_webhook: {url: 'ftp://x'}\n",
            "monitoring.alert_webhook.url (line 2)",
        ),
    ],
)
def test_bad_rules_are_refused_with_the_line_named(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(text)
    assert expected in str(refused.value)
    assert str(refused.value).startswith("whoosh.yaml: invalid configuration")


def test_durations() -> None:
    assert [parse_duration(v) for v in (0, 90, "90", "90s", "1.5m", "2h", "500ms")] == [
        0,
        90,
        90,
        90,
        90,
        7200,
        0.5,
    ]
    for bad in ("-1s", "1d", True, float("inf")):
        with pytest.raises(ValueError):
            parse_duration(bad)
