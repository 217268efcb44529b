"""The Agent aggregate: an agent's definition, whether it takes work, and its busy slots.

Slots live on the aggregate (not only in a projection) because assignment saves
the Task and the Agent in one transaction: optimistic concurrency on the Agent's
version is what makes it impossible to hand out one slot twice, even with several
coordinators writing to one store.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from whoosh_shared.contract.commands import RejectCode

from whoosh_coordinator.rejection import Rejected

AGENT_NAMESPACE = uuid5(NAMESPACE_URL, "whoosh:agent")


class Agent(Aggregate):
    """Registered once per name: the id is derived from the name, so a duplicate cannot land."""

    @staticmethod
    def create_id(spec: dict[str, Any]) -> UUID:
        return agent_id(spec["name"])

    @event("Registered")
    def __init__(self, spec: dict[str, Any], actor: str) -> None:
        self.spec = spec
        self.enabled: bool = bool(spec.get("enabled", True))
        self.in_flight: dict[str, int] = {}
        self.inventory: dict[str, Any] | None = None
        self.healthy = True
        self.missing_models: list[str] = []

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def max_concurrent(self) -> int:
        return int(self.spec.get("max_concurrent", 1))

    def has_free_slot(self) -> bool:
        return len(self.in_flight) < self.max_concurrent

    @event("Updated")
    def update(self, changes: dict[str, Any], actor: str) -> None:
        self.spec = {**self.spec, **changes}

    @property
    def weight(self) -> int:
        return int(self.spec.get("weight", 100))

    def set_weight(self, weight: int, actor: str) -> bool:
        """Record a change of traffic weight; the same weight again records nothing.
        Running work is untouched: weight 0 drains (no new work, nothing stopped)."""
        if not 0 <= weight <= 100:
            raise Rejected(RejectCode.INVALID, f"weight {weight} is outside 0..100")
        if weight == self.weight:
            return False
        self._weight_changed(weight=weight, previous=self.weight, actor=actor)
        return True

    @event("WeightChanged")
    def _weight_changed(self, weight: int, previous: int, actor: str) -> None:
        self.spec = {**self.spec, "weight": weight}

    def enable(self, actor: str) -> None:
        if not self.enabled:
            self._enabled(actor=actor)

    def disable(self, actor: str) -> None:
        if self.enabled:
            self._disabled(actor=actor)

    @event("Enabled")
    def _enabled(self, actor: str) -> None:
        self.enabled = True

    @event("Disabled")
    def _disabled(self, actor: str) -> None:
        self.enabled = False

    @property
    def removed(self) -> bool:
        return bool(getattr(self, "_removed", False))  # snapshots older than removal lack it

    def remove(self, actor: str) -> None:
        """Refused while the agent holds work: its executor's reports must find it."""
        if self.in_flight:
            raise Rejected(
                RejectCode.BAD_STATE,
                f"agent '{self.name}' has {len(self.in_flight)} task(s) in flight; cancel "
                "them or wait for them to finish (disable it to stop new work meanwhile)",
            )
        self._removed_event(actor=actor)

    @event("Removed")
    def _removed_event(self, actor: str) -> None:
        self._removed = True
        self.enabled = False

    @event("Reregistered")
    def reregister(self, spec: dict[str, Any], actor: str) -> None:
        """A removed agent's name registered again: a fresh definition on the same id."""
        self.spec = spec
        self.enabled = bool(spec.get("enabled", True))
        self._removed = False
        self.in_flight = {}
        self.inventory = None
        self.missing_models = []
        self.healthy = True

    def report_inventory(self, inventory: dict[str, Any], seen_version: int | None) -> bool:
        """Record a probe's findings if they differ from the last ones; True if recorded.

        Probes repeat every few seconds from every executor: recording only changes keeps
        the store to what happened (a model pulled, loaded, unloaded; the server lost).
        A fresh listing is the truth again, except for a model whose 404 was recorded after
        the probe round saw the agent at `seen_version`: that listing may predate it.
        The same findings are recorded again once work ended on the agent before the round
        began (a round that says when it began: LLM probes do): the coordinator counts a
        model used there as loaded for its keep-alive, and this probe, not listing it, says
        it is gone (scheduling/warmth.py)."""
        seen = seen_version
        ended = self._ended_since_inventory
        news = ended is not None and seen is not None and ended <= seen
        if inventory == self.inventory and not news:
            return False
        marked = self._missing_marked_at
        still = [m for m in self.missing_models if seen is not None and marked.get(m, 0) > seen]
        self._inventory_reported(inventory=inventory, still_missing=still, seen_version=seen)
        return True

    @event("InventoryReported")
    def _inventory_reported(
        self, inventory: dict[str, Any], still_missing: list[str], seen_version: int | None = None
    ) -> None:
        self.inventory = inventory
        self.missing_models = list(still_missing)
        self._ended_at: int | None = None

    def mark_model_missing(self, model: str, task_id: UUID) -> None:
        if model not in self.missing_models:
            self._model_missing(model=model, task_id=task_id)

    @event("ModelMissing")
    def _model_missing(self, model: str, task_id: UUID) -> None:
        self.missing_models.append(model)
        self._missing_marked_at[model] = self.version + 1  # this event's version

    @property
    def _missing_marked_at(self) -> dict[str, int]:
        """Model -> version of its ModelMissing event (absent from older snapshots)."""
        if not hasattr(self, "_marked_at"):
            self._marked_at: dict[str, int] = {}
        return self._marked_at

    def report_health(self, healthy: bool, reason: str | None, actor: str) -> bool:
        """Record a change of health; the same verdict again records nothing."""
        if healthy == self.healthy:
            return False
        self._health_changed(healthy=healthy, reason=reason, actor=actor)
        return True

    @event("HealthChanged")
    def _health_changed(self, healthy: bool, reason: str | None, actor: str) -> None:
        self.healthy = healthy

    def take_slot(self, task_id: UUID, attempt: int) -> None:
        if not self.enabled:
            raise Rejected(RejectCode.BAD_STATE, f"agent '{self.name}' is disabled")
        if not self.has_free_slot():
            raise Rejected(
                RejectCode.CONFLICT,
                f"agent '{self.name}' is at max_concurrent={self.max_concurrent}",
            )
        self._slot_taken(task_id=task_id, attempt=attempt)

    @event("SlotTaken")
    def _slot_taken(self, task_id: UUID, attempt: int) -> None:
        self.in_flight[str(task_id)] = attempt

    def holds(self, task_id: UUID) -> bool:
        return str(task_id) in self.in_flight

    def release_slot(self, task_id: UUID) -> None:
        """Idempotent: releasing a slot the agent does not hold records nothing."""
        attempt = self.in_flight.get(str(task_id))
        if attempt is not None:
            self._slot_released(task_id=task_id, attempt=attempt)

    @event("SlotReleased")
    def _slot_released(self, task_id: UUID, attempt: int) -> None:
        self.in_flight.pop(str(task_id), None)
        if self._ended_since_inventory is None:
            self._ended_at = self.version + 1  # this event's version

    @property
    def _ended_since_inventory(self) -> int | None:
        """Version of the first slot released since the last inventory was recorded
        (absent from older snapshots: none)."""
        return getattr(self, "_ended_at", None)


def agent_id(name: str) -> UUID:
    return uuid5(AGENT_NAMESPACE, name)
