"""Alert rule evaluation: readings in, raise/resolve transitions out. Pure, injected clock.

Like Prometheus: a series whose condition holds becomes pending; pending for the rule's
`for` duration it fires (one `raise`); once the condition no longer holds, or the
series is no longer reported at all (a host that went away), it resolves (one
`resolve`). While firing nothing more is emitted, however long it lasts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from whoosh_shared.contract.alerts import AlertMetric, AlertRule

Labels = tuple[tuple[str, str], ...]


def labels_of(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Reading:
    metric: AlertMetric
    labels: Labels
    value: float


@dataclass(frozen=True)
class Transition:
    kind: Literal["raise", "resolve"]
    rule: AlertRule
    labels: dict[str, str]
    value: float | None
    text: str  # the summary of a raise, the reason of a resolve


@dataclass
class _Series:
    since: float
    firing: bool = False
    value: float = 0.0


@dataclass
class RuleEngine:
    rules: list[AlertRule]
    clock: Callable[[], float]
    _state: dict[tuple[str, Labels], _Series] = field(default_factory=dict)

    def adopt_firing(self, rule: str, labels: dict[str, str]) -> bool:
        """An alert already firing in the store (a restarted monitor): it is resolved when
        its condition is not found to hold, instead of being raised a second time."""
        if not any(r.name == rule for r in self.rules):
            return False
        key = (rule, tuple(sorted(labels.items())))
        self._state[key] = _Series(since=self.clock(), firing=True)
        return True

    def firing(self) -> dict[tuple[str, Labels], float]:
        return {key: s.value for key, s in self._state.items() if s.firing}

    def evaluate(self, readings: Iterable[Reading]) -> list[Transition]:
        now = self.clock()
        by_metric: dict[AlertMetric, list[Reading]] = {}
        for reading in readings:
            by_metric.setdefault(reading.metric, []).append(reading)
        rules = {rule.name: rule for rule in self.rules}
        holding: set[tuple[str, Labels]] = set()
        out: list[Transition] = []
        for rule in self.rules:
            for reading in by_metric.get(rule.metric, []):
                if not rule.holds(reading.value):
                    continue
                key = (rule.name, reading.labels)
                holding.add(key)
                series = self._state.setdefault(key, _Series(since=now))
                series.value = reading.value
                if not series.firing and now - series.since >= rule.for_s:
                    series.firing = True
                    labels = dict(reading.labels)
                    text = rule.describe(labels, reading.value)
                    out.append(Transition("raise", rule, labels, reading.value, text))
        reported = {
            (rule.name, reading.labels)
            for rule in self.rules
            for reading in by_metric.get(rule.metric, [])
        }
        for key in [k for k in self._state if k not in holding]:
            series = self._state.pop(key)
            if not series.firing:
                continue  # pending only: it never fired, nothing to resolve
            rule = rules.get(key[0])
            if rule is None:
                continue
            why = "condition cleared" if key in reported else "no longer reported"
            out.append(Transition("resolve", rule, dict(key[1]), None, why))
        return out
