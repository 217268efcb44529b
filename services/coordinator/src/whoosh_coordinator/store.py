"""The event store: an `eventsourcing` Application over SQLite or PostgreSQL.

Also the single mapping from a stored notification to the EventEnvelope every
consumer reads, used by the relay, the live projections and replay alike, so
that what is published and what is replayed cannot drift apart.
"""

from __future__ import annotations

import time
from typing import Any

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import Notification, PersistenceError, Recording
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.runtime.store import store_env

from whoosh_coordinator import pg_recorder
from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.alerts.domain import Alert
from whoosh_coordinator.budgets.domain import Budget
from whoosh_coordinator.durability import StoreSync, apply_sync
from whoosh_coordinator.keys.domain import ApiKey
from whoosh_coordinator.tasks.domain import Task
from whoosh_coordinator.threads.domain import Thread
from whoosh_coordinator.workflows.domain import Execution, Workflow

ENVELOPE_SKIP = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
AGGREGATE_TYPES = {
    Agent: "agent",
    Task: "task",
    ApiKey: "apikey",
    Alert: "alert",
    Workflow: "workflow",
    Execution: "execution",
    Thread: "thread",
    Budget: "budget",
}


class WhooshStore(Application[Any]):
    """Snapshots bound the cost of loading an Agent with a long history of slot events;
    the coordinator keeps the aggregates it works with in memory (see working_set)."""

    name = "whoosh"
    snapshotting_intervals = {Agent: 200, Task: 50}
    env = {"IS_SNAPSHOTTING_ENABLED": "y"}

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[Any]]:
        """`Application.save`, collecting an aggregate's events without asking two
        runtime-checkable Protocols whether it is an event first: on Python 3.11 each such
        isinstance walks the protocol's members, and that was ~0.3 ms of the coordinator's
        ~0.8 ms of CPU per task (cProfile, bench_noop). Anything but an aggregate takes
        the library's own path."""
        processing_event: ProcessingEvent[Any] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated hook, kept as the library does
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[Any]) -> None:
        """Snapshot, from memory, each saved aggregate whose events reached a multiple of
        its interval. The library's own `take_snapshot` loads the aggregate back from the
        store (last snapshot + up to `interval` events: 8-14 ms for an Agent at 200), inside
        the save of a hot-path command, so every 100th task of an agent stalled every task
        in flight. The aggregate in hand is the state just recorded (its version is its
        last saved event's); a snapshot of a later version than the interval's is as good."""
        if self.snapshots is None:
            return
        due: dict[Any, BaseAggregate[Any]] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if aggregate is not None and interval and event.originator_version % interval == 0:
                due[aggregate.id] = aggregate
        if due:
            self.snapshots.put([type(a).Snapshot.take(a) for a in due.values()])


def open_store(url: str, sync: StoreSync = "normal", **extra_env: str) -> WhooshStore:
    """The store at `url`, every connection with the commit durability `sync` (see
    durability.py). Its tables are created once that is set, so that no connection the
    store opens misses it."""
    env = {**store_env(url), **extra_env}
    if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        env.setdefault("APPLICATION_RECORDER_TOPIC", pg_recorder.TOPIC)  # see pg_recorder
    create = env.pop("CREATE_TABLE", "yes")
    store = WhooshStore(env={**env, "CREATE_TABLE": "no"})
    apply_sync(store, sync)
    if create.lower() in ("y", "yes", "t", "true", "on", "1"):
        _create_tables(store)
    return store


def _create_tables(store: WhooshStore) -> None:
    """CREATE ... IF NOT EXISTS, once more if it lost a race: two coordinators starting
    together on one PostgreSQL schema can both pass the check, and the loser gets a
    unique violation on the catalog (seen with bench_noop --coordinators 2)."""
    recorders = [store.recorder] + ([store.snapshots.recorder] if store.snapshots else [])
    for recorder in recorders:
        try:
            recorder.create_table()
        except PersistenceError:
            time.sleep(0.2)
            recorder.create_table()  # the other writer's tables exist by now


def to_envelope(store: WhooshStore, notification: Notification[Any]) -> EventEnvelope:
    """Decode one notification into the published/replayed envelope."""
    return envelope_of(store.mapper.to_domain_event(notification), notification.id)


def recorded_envelopes(recordings: list[Recording[Any]]) -> list[EventEnvelope]:
    """Envelopes of what this process just saved, without reading it back from the store."""
    return [envelope_of(r.domain_event, r.notification.id) for r in recordings]


def envelope_of(domain_event: Any, notification_id: int) -> EventEnvelope:
    qualname = type(domain_event).__qualname__  # e.g. "Task.Submitted"
    aggregate_name, _, event_name = qualname.partition(".")
    data = {key: value for key, value in domain_event.__dict__.items() if key not in ENVELOPE_SKIP}
    return EventEnvelope(
        notification_id=notification_id,
        aggregate_type=aggregate_name.lower(),  # type: ignore[arg-type]
        aggregate_id=domain_event.originator_id,
        version=domain_event.originator_version,
        type=f"{aggregate_name}{event_name}",
        timestamp=domain_event.timestamp,
        data=_jsonable(data),
    )


def read_envelopes(store: WhooshStore, after: int, limit: int = 500) -> list[EventEnvelope]:
    """Envelopes with notification ids greater than `after`, in order."""
    notifications = store.recorder.select_notifications(
        start=after + 1, limit=limit, inclusive_of_start=True
    )
    return [to_envelope(store, n) for n in notifications]


PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    """The value with datetimes, dates and UUIDs as strings. Plain values are the common
    case (most fields of every event, and every item of its lists): they are let through
    first, by exact type, before the checks for the rest (each of those `hasattr` misses
    raises and catches an AttributeError inside; ~8 % of the coordinator's time per task
    went to this function before, py-spy at C=32)."""
    if type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "hex") and type(value).__name__ == "UUID":
        return str(value)
    return value
