"""The aggregates this coordinator decides with, kept in memory between commands.

eventsourcing's aggregate cache deep-copies an aggregate on every get (measured as the
largest CPU cost per task). Here an aggregate is used as is. What a failed decision
touched is forgotten, so it is reloaded from the store next time; a copy that went
stale because another coordinator wrote shows up as an IntegrityError on save, and
the command is decided again from fresh state.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.keys.domain import ApiKey
from whoosh_coordinator.store import WhooshStore
from whoosh_coordinator.tasks.domain import Task

Aggregate = Agent | Task | ApiKey
KEPT = 50_000


class StaleCopy(IntegrityError):
    """A decision found a remembered aggregate out of date where the store cannot: a
    change that records nothing (no event, so no version check) would be lost. Handled
    as the store's own conflict: forget what was touched and decide again."""


class WorkingSet:
    def __init__(self, store: WhooshStore, kept: int = KEPT) -> None:
        self.store = store
        self.kept = kept
        self._memory: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._touched: set[UUID] = set()
        self._loaded: dict[UUID, Aggregate] = {}
        self._from_memory = False

    def begin(self) -> None:
        """Start one decision: nothing touched yet."""
        self._touched.clear()
        self._loaded.clear()
        self._from_memory = False

    def get(self, aggregate_id: UUID) -> Aggregate:
        """Raises eventsourcing's AggregateNotFoundError when the store has no such aggregate."""
        self._touched.add(aggregate_id)
        aggregate = self._memory.get(aggregate_id)
        if aggregate is not None:
            self._memory.move_to_end(aggregate_id)
            self._from_memory = True
            return aggregate
        loaded = self._loaded.get(aggregate_id)
        if loaded is None:  # one copy per decision: two loads must not save twice
            loaded = self._loaded[aggregate_id] = self.store.repository.get(aggregate_id)
        return loaded

    @property
    def decided_from_memory(self) -> bool:
        """Whether the current decision read any remembered (possibly stale) aggregate."""
        return self._from_memory

    def keep(self, *aggregates: Aggregate) -> None:
        """Remember aggregates whose events were just saved. A task that ended is let go:
        what it may still receive (a late report, a refused cancel) is rare and can be
        decided from the store, and keeping it would make memory grow with work done."""
        for aggregate in aggregates:
            if isinstance(aggregate, Task) and aggregate.terminal:
                self._memory.pop(aggregate.id, None)
                continue
            self._memory[aggregate.id] = aggregate
            self._memory.move_to_end(aggregate.id)
        while len(self._memory) > self.kept:
            self._memory.popitem(last=False)

    def forget_touched(self) -> None:
        """Drop what a failed decision may have changed without saving."""
        for aggregate_id in self._touched:
            self._memory.pop(aggregate_id, None)
        self._touched.clear()
        self._loaded.clear()
