"""The PostgreSQL recorder that saves in one round trip (pg_recorder.py) keeps what the
library's recorder guaranteed: ids in save order, a taken version refused, and the table
lock that keeps notification ids in commit order for every reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from harness import PG_ADMIN_URL
from whoosh_coordinator.pg_recorder import OneTripRecorder
from whoosh_coordinator.store import WhooshStore, open_store
from whoosh_coordinator.tasks.domain import Task


def _task() -> Task:
    return Task(
        prompt="noop",
        prompt_ref=None,
        priority=0,
        capabilities=[],
        agent_type=None,
        model=None,
        agent="a",
        timeout_s=60,
        retry={"max_attempts": 1},
        actor="test",
        llm=None,
        idempotency=None,
        depends_on=[],
    )


@pytest.fixture
def store(pg_url: str) -> Iterator[WhooshStore]:
    opened = open_store(pg_url)
    yield opened
    opened.close()


def test_saves_get_increasing_ids_and_a_taken_version_is_refused(store: WhooshStore) -> None:
    assert isinstance(store.recorder, OneTripRecorder)
    tasks = [_task() for _ in range(3)]
    ids = [r.notification.id for t in tasks for r in store.save(t)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [n.id for n in store.recorder.select_notifications(start=1, limit=10)] == ids

    again = _task()
    stored = [store.mapper.to_stored_event(e) for e in again.collect_events()]
    store.recorder.insert_events(stored)
    with pytest.raises(IntegrityError):
        store.recorder.insert_events(stored)
    assert store.recorder.max_notification_id() == ids[-1] + 1  # the refused one left nothing


def test_a_save_waits_for_a_writer_holding_the_table(store: WhooshStore, pg_url: str) -> None:
    """Without the lock a later save could commit a higher id before an earlier, slower
    transaction commits its lower one, and a reader tailing the log would skip that one."""
    schema = pg_url.split("schema=")[1]
    table = store.recorder.events_table_name
    saved = threading.Event()
    with psycopg.connect(PG_ADMIN_URL.split("?")[0]) as other:
        # a writer mid-way through its insert: ROW EXCLUSIVE, which a plain INSERT takes
        # and does not wait for, and which the table lock (EXCLUSIVE) must wait for
        other.execute(f'LOCK TABLE "{schema}"."{table}" IN ROW EXCLUSIVE MODE')
        saving = threading.Thread(target=lambda: (store.save(_task()), saved.set()))
        saving.start()
        time.sleep(0.5)
        waited = not saved.is_set()
        other.commit()
    saving.join(timeout=10)
    assert waited, "the save went through while another writer held the table"
    assert saved.is_set()
