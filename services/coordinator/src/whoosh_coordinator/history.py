"""One aggregate's stored events, read by its id: a task's full history however old it is.

eventsourcing reads an aggregate's events without their notification ids, and reads the
notification log without an aggregate filter. A history that clients can resume from
needs both, so this asks the recorder's own table directly (its primary key starts with
the originator id, so the read is an index lookup on SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from whoosh_shared.contract.events import EventEnvelope

from whoosh_coordinator.store import WhooshStore, to_envelope


def aggregate_events(
    store: WhooshStore, aggregate_id: UUID, after: int, limit: int
) -> list[EventEnvelope]:
    """Events of one aggregate with notification ids above `after`, in order."""
    recorder = store.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        rows = _sqlite_rows(recorder, aggregate_id, after, limit)
    elif isinstance(recorder, PostgresApplicationRecorder):
        rows = _postgres_rows(recorder, aggregate_id, after, limit)
    else:  # pragma: no cover - only the two stores WHOOSH configures
        raise TypeError(f"no history reader for {type(recorder).__name__}")
    return [to_envelope(store, notification) for notification in rows]


def _sqlite_rows(
    recorder: SQLiteApplicationRecorder, aggregate_id: UUID, after: int, limit: int
) -> list[Notification]:
    statement = (
        f"SELECT rowid, * FROM {recorder.events_table_name} "
        "WHERE originator_id=? AND rowid>? ORDER BY originator_version LIMIT ?"
    )
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, [aggregate_id.hex, after, limit])
        rows = cursor.fetchall()
        return [_notification(row, row["rowid"], UUID(row["originator_id"])) for row in rows]


def _postgres_rows(
    recorder: PostgresApplicationRecorder, aggregate_id: UUID, after: int, limit: int
) -> list[Notification]:
    from psycopg.sql import SQL, Identifier

    statement = SQL(
        "SELECT * FROM {schema}.{table} WHERE originator_id = %s AND notification_id > %s "
        "ORDER BY originator_version LIMIT %s"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, [aggregate_id, after, limit])
        return [
            _notification(row, row["notification_id"], row["originator_id"])
            for row in cursor.fetchall()
        ]


def _notification(row: Any, notification_id: int, originator_id: UUID) -> Notification:
    return Notification(
        id=notification_id,
        originator_id=originator_id,
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )
