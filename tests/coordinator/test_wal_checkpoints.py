"""SQLite's WAL is checkpointed by a thread of its own, never inside a save.

A save that took the log past 1,000 pages used to checkpoint it itself (5-7 ms instead
of 0.3, with the coordinator's loop stopped). These check the two halves: no connection
of the store checkpoints, and the thread does, so what is saved reaches the database
file (read here from a copy of the file alone, without its log)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import open_store
from whoosh_coordinator.wal_checkpoints import WalCheckpointer, checkpoint_in_background
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent


def _register(store: Any, count: int) -> None:
    projection = FleetProjection()
    handler = CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)
    for i in range(count):
        spec = AgentSpec(name=f"agent-{i}", command=["true"])
        assert handler.handle(RegisterAgent(spec=spec, actor="test")).accepted


def _events_in_file_alone(db: Path, tmp_path: Path) -> int:
    """Events in the database file itself: what checkpoints have copied out of the log."""
    copy = tmp_path / "file-alone.sqlite"
    shutil.copyfile(db, copy)  # without events.sqlite-wal: SQLite sees only the file
    with sqlite3.connect(copy) as connection:
        try:
            return connection.execute("SELECT count(*) FROM stored_events").fetchone()[0]
        except sqlite3.OperationalError:  # not even the table has been copied yet
            return 0


def _autocheckpoint(store: Any) -> set[int]:
    pages = set()
    for _ in range(4):
        with store.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            pages.add(cursor.fetchone()[0])
    return pages


def test_saves_never_checkpoint_and_the_thread_copies_them_to_the_file(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    store = open_store(f"sqlite:///{db}")
    checkpoints = checkpoint_in_background(store)
    try:
        assert isinstance(checkpoints, WalCheckpointer)
        assert _autocheckpoint(store) == {0}
        before = _events_in_file_alone(db, tmp_path)
        _register(store, 20)
        deadline = time.monotonic() + 5
        while _events_in_file_alone(db, tmp_path) < before + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _events_in_file_alone(db, tmp_path) == before + 20
    finally:
        if checkpoints is not None:
            checkpoints.stop()
        store.close()


def test_without_the_thread_the_saves_stay_in_the_log(tmp_path: Path) -> None:
    """The check above can fail: with saves not checkpointing and no thread, nothing
    reaches the database file."""
    db = tmp_path / "events.sqlite"
    store = open_store(f"sqlite:///{db}")
    checkpoints = checkpoint_in_background(store)
    assert checkpoints is not None
    checkpoints.stop()  # its last checkpoint runs now, before anything is saved
    try:
        before = _events_in_file_alone(db, tmp_path)
        _register(store, 20)
        time.sleep(0.5)
        assert _events_in_file_alone(db, tmp_path) == before
    finally:
        store.close()


def test_postgresql_and_memory_stores_need_no_thread(pg_url: str) -> None:
    for url in (pg_url, "sqlite:///:memory:"):
        store = open_store(url)
        try:
            assert checkpoint_in_background(store) is None
        finally:
            store.close()
