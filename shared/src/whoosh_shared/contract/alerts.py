"""Alert rules (whoosh.yaml, `monitoring:`), the alerts they raise, and how alerts are named.

A rule watches one metric of a closed vocabulary (the seeds' cpu_usage, memory_usage,
gpu_usage, response_time, plus the fleet's own), compares it with a threshold and
fires once the condition has held for `for` seconds. Each labelled series (a host, a
GPU, an agent) is its own alert, identified by the rule's name and those labels.
Alerts are events on an Alert aggregate in the coordinator (AlertRaised / AlertResolved),
raised once while firing however often the monitor asks.

Units follow the seeds: usage metrics are percentages (85 means 85 %), times are
seconds; `*_over_target` / `*_under_target` are ratios to the agent's own
`performance_targets` (1.0 = exactly on target).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import ConfigDict, Field, field_validator, model_validator

from whoosh_shared.contract.agents import Strict


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertMetric(StrEnum):
    CPU_USAGE = "cpu_usage"  # percent of the host's CPU in use, per host
    MEMORY_USAGE = "memory_usage"  # percent of the host's memory in use, per host
    GPU_USAGE = "gpu_usage"  # percent utilization, per GPU
    GPU_MEMORY_USAGE = "gpu_memory_usage"  # percent of the GPU's memory in use, per GPU
    GPU_TEMPERATURE = "gpu_temperature"  # degrees Celsius, per GPU
    RESPONSE_TIME = "response_time"  # seconds: mean of the agent's recent completed attempts
    AGENT_FAILURE_RATE = "agent_failure_rate"  # percent of the agent's recent attempts failed
    RESPONSE_TIME_OVER_TARGET = "response_time_over_target"  # response_time / max_response_time
    TOKENS_PER_SECOND_UNDER_TARGET = "tokens_per_second_under_target"  # decode tok/s / min_tps
    QUEUE_DEPTH = "queue_depth"  # tasks waiting for an agent
    SSH_POOL_USAGE = "ssh_pool_usage"  # percent of the SSH channels to a host in use
    AGENT_UNHEALTHY = "agent_unhealthy"  # 1 while the agent is unhealthy, else 0


PERCENT_METRICS = frozenset(
    {
        AlertMetric.CPU_USAGE,
        AlertMetric.MEMORY_USAGE,
        AlertMetric.GPU_USAGE,
        AlertMetric.GPU_MEMORY_USAGE,
        AlertMetric.AGENT_FAILURE_RATE,
        AlertMetric.SSH_POOL_USAGE,
    }
)

Op = Literal[">", ">=", "<", "<="]
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
RULE_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


def parse_duration(value: Any) -> float:
    """Seconds from 90, "90s", "1.5m", "2h" or "500ms"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or e.g. '30s', '2m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 30, '30s', '2m', '1h')")
        seconds = float(match.group(1)) * UNIT_S[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration of zero or more seconds")
    return seconds


def check_threshold(metric: AlertMetric, threshold: float) -> float:
    if not math.isfinite(threshold):
        raise ValueError(f"threshold {threshold} of {metric.value} is not a finite number")
    if metric in PERCENT_METRICS and not 0 <= threshold <= 100:
        raise ValueError(f"{metric.value} is a percentage: threshold {threshold:g} is not 0..100")
    if threshold < 0:
        raise ValueError(f"threshold {threshold:g} of {metric.value} is negative")
    return threshold


class AlertRule(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=100, pattern=RULE_NAME)
    metric: AlertMetric
    op: Op = ">"
    threshold: float
    for_s: float = Field(default=60.0, alias="for", description="seconds the condition must hold")
    severity: Severity = Severity.WARNING
    summary: str | None = Field(
        default=None, max_length=300, description="text; {value}, {threshold} and labels fill in"
    )

    @field_validator("for_s", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _threshold_fits_metric(self) -> AlertRule:
        check_threshold(self.metric, self.threshold)
        return self

    def holds(self, value: float) -> bool:
        match self.op:
            case ">":
                return value > self.threshold
            case ">=":
                return value >= self.threshold
            case "<":
                return value < self.threshold
            case _:
                return value <= self.threshold

    def describe(self, labels: dict[str, str], value: float) -> str:
        fields = {**labels, "value": f"{value:.4g}", "threshold": f"{self.threshold:g}"}
        if self.summary:
            return self.summary.format_map(_Lenient(fields))[:500]
        where = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        on = f" ({where})" if where else ""
        return f"{self.metric.value} {value:.4g} {self.op} {self.threshold:g}{on}"[:500]


class _Lenient(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _rule(name: str, metric: AlertMetric, threshold: float, for_s: float, **kw: Any) -> AlertRule:
    return AlertRule(name=name, metric=metric, threshold=threshold, for_s=for_s, **kw)


# The seeds' thresholds (cpu 85, memory 90, gpu 95, response time 60 s) and the fleet's own.
DEFAULT_RULES: tuple[AlertRule, ...] = (
    _rule("HostCpuHigh", AlertMetric.CPU_USAGE, 85, 120),
    _rule("HostMemoryHigh", AlertMetric.MEMORY_USAGE, 90, 120),
    _rule("GpuBusy", AlertMetric.GPU_USAGE, 95, 300),
    _rule("GpuMemoryFull", AlertMetric.GPU_MEMORY_USAGE, 95, 300),
    _rule("GpuHot", AlertMetric.GPU_TEMPERATURE, 85, 120, severity=Severity.CRITICAL),
    _rule("AgentSlow", AlertMetric.RESPONSE_TIME, 60, 60),
    _rule("AgentFailing", AlertMetric.AGENT_FAILURE_RATE, 10, 120, severity=Severity.CRITICAL),
    _rule("AgentOverResponseTarget", AlertMetric.RESPONSE_TIME_OVER_TARGET, 1.0, 300),
    _rule("AgentUnderSpeedTarget", AlertMetric.TOKENS_PER_SECOND_UNDER_TARGET, 1.0, 300, op="<"),
    _rule("QueueBacklog", AlertMetric.QUEUE_DEPTH, 100, 300),
    _rule("SshPoolSaturated", AlertMetric.SSH_POOL_USAGE, 90, 60),
    _rule("AgentUnhealthy", AlertMetric.AGENT_UNHEALTHY, 0, 0, severity=Severity.CRITICAL),
)


class WebhookSettings(Strict):
    """Where alerts are POSTed (JSON), how long one try may take and how often to retry."""

    url: str = Field(pattern=r"^https?://\S+$")
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0, le=60)
    headers: dict[str, str] = Field(default_factory=dict)


ALERT_NAMESPACE = uuid5(NAMESPACE_URL, "whoosh:alert")


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """`Rule{k=v,...}`: one alert per rule and labelled series."""
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{rule}{{{inner}}}"


def alert_id(rule: str, labels: dict[str, str]) -> UUID:
    return uuid5(ALERT_NAMESPACE, fingerprint(rule, labels))


AlertStatus = Literal["firing", "resolved"]


class AlertView(Strict):
    id: UUID
    fingerprint: str
    rule: str
    severity: Severity
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = ""
    value: float | None = None
    threshold: float | None = None
    status: AlertStatus
    raised_at: datetime
    resolved_at: datetime | None = None
    resolved_reason: str | None = None
    times_raised: int = 1
