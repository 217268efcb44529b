"""The Alert aggregate: one rule firing on one labelled series, raised and resolved.

The id is derived from the rule and the labels, so however many monitors ask, there is
one Alert per series, and it is raised once while firing: a raise of a firing alert and
a resolve of a resolved one record nothing (de-duplication by the aggregate's state,
kept honest across coordinators by its version).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from whoosh_shared.contract.alerts import alert_id


class Alert(Aggregate):
    @staticmethod
    def create_id(rule: str, labels: dict[str, str]) -> UUID:
        return alert_id(rule, labels)

    @event("Created")
    def __init__(self, rule: str, labels: dict[str, str]) -> None:
        self.rule = rule
        self.labels = labels
        self.firing = False

    def raise_(self, fields: dict[str, Any], actor: str) -> bool:
        """Record that the alert fires; False (nothing recorded) if it already does."""
        if self.firing:
            return False
        self._raised(rule=self.rule, labels=self.labels, actor=actor, **fields)
        return True

    @event("Raised")
    def _raised(
        self,
        rule: str,
        severity: str,
        labels: dict[str, str],
        summary: str,
        value: float | None,
        threshold: float | None,
        actor: str,
    ) -> None:
        self.firing = True

    def resolve(self, reason: str, actor: str) -> bool:
        """Record that the alert stopped firing; False if it was not firing."""
        if not self.firing:
            return False
        self._resolved(reason=reason, actor=actor)
        return True

    @event("Resolved")
    def _resolved(self, reason: str, actor: str) -> None:
        self.firing = False
