"""How hard each commit is pushed to disk: `store.sync` (`normal`, the default, or `full`).

A WHOOSH task is three or four commits on its critical path, and on an ordinary disk an
fsync costs 1-8 ms (measured 2.4 ms idle, ~7 ms loaded on the benchmark machine), more
than everything else a no-op task does. So the default trades the OS-crash window, not
the process-crash one:

- SQLite: WAL mode with `synchronous=NORMAL`. A commit is in the WAL (the OS page
  cache) when `save` returns, so a kill -9 of the coordinator (or of anything else)
  loses nothing it acknowledged; an OS crash or power loss may lose the commits since
  the last checkpoint, which fsyncs the WAL (wal_checkpoints.py: about every 0.2 s,
  from a thread). `full` sets `synchronous=FULL` (fsync per commit).
- PostgreSQL: `synchronous_commit=off` for the coordinator's sessions. The commit is in
  PostgreSQL's WAL buffers when `save` returns, so any WHOOSH process may crash; a crash
  of PostgreSQL itself or of its OS may lose up to 3 x `wal_writer_delay` (600 ms by
  default) of commits. `full` sets `synchronous_commit=on` (flush before commit returns).

Either way a commit is atomic and ordered: what is lost is a suffix of the log, never a
half-written event, and the relay never published anything of that suffix that a
restarted coordinator would contradict only in the OS-crash case. The choice is stated
next to every benchmark figure (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import sqlite3
import weakref
from collections.abc import Iterator
from typing import Any, Literal

StoreSync = Literal["normal", "full"]
SQLITE_PRAGMA: dict[str, str] = {"normal": "NORMAL", "full": "FULL"}
POSTGRES_OPTION: dict[str, str] = {"normal": "off", "full": "on"}


def apply_sync(store: Any, sync: StoreSync) -> None:
    """Set the commit durability on every connection `store` has and will open."""
    if sync not in SQLITE_PRAGMA:
        raise ValueError(f"store sync {sync!r}: use 'normal' or 'full'")
    pool = sqlite_pool(store)
    if pool is not None:
        on_every_sqlite_connection(pool, f"PRAGMA synchronous={SQLITE_PRAGMA[sync]}")
    elif type(store.recorder.datastore).__module__.startswith("eventsourcing.postgres"):
        _postgres(store.recorder.datastore, POSTGRES_OPTION[sync])


def sqlite_pool(store: Any) -> Any | None:
    """The connection pool of a store on SQLite (None on PostgreSQL)."""
    datastore = store.recorder.datastore
    if type(datastore).__module__.startswith("eventsourcing.sqlite"):
        return datastore.pool
    return None


def on_every_sqlite_connection(pool: Any, statement: str) -> None:
    """Run `statement` on every connection of an eventsourcing SQLite pool: those it has
    (opened while the store created its tables) and those it opens later."""
    create = pool._create_connection

    def create_and_run() -> Any:
        connection = create()
        connection._sqlite_conn.execute(statement)
        return connection

    pool._create_connection = create_and_run
    for connection in list(pool._pool):
        raw: sqlite3.Connection = connection._sqlite_conn
        raw.execute(statement)


def _postgres(datastore: Any, level: str) -> None:
    """Every connection the datastore hands out gets the setting once (it is a session
    setting and the pool does not reset sessions). Done at checkout rather than through
    the pool's connect options: the pool opens connections in background threads, some
    of them before the store exists, so only checkout sees every one of them."""
    statement = f"SET synchronous_commit = {level}"
    configured: weakref.WeakSet[Any] = weakref.WeakSet()
    get_connection = datastore.get_connection

    @contextlib.contextmanager
    def get_configured_connection() -> Iterator[Any]:
        with get_connection() as conn:
            if conn not in configured:
                conn.execute(statement)
                configured.add(conn)
            yield conn

    datastore.get_connection = get_configured_connection
