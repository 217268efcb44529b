"""Backup and restore of the event store, on SQLite (online backup API) and PostgreSQL
(pg_dump / pg_restore): the copy is consistent, verified by replay, restores only into an
empty store, and the restored store replays to projections equal to the original's."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from coordinator.core import Core
from harness import PgSchema
from whoosh_coordinator.backups.store_backup import BackupError, backup, restore
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.store import open_store


def populate(core: Core, tasks: int = 40) -> None:
    core.register("one", capabilities=["x"], max_concurrent=3, env={"TOKEN": "t0k"})
    core.register("two", capabilities=["x"], max_concurrent=3)
    for i in range(tasks):
        core.submit(capabilities=["x"], priority=1 + i % 10)
    while active := core.projection.active()[:4]:
        for view in active:
            core.run_to_end(view.id, ok=view.priority % 3 != 0)
        if core.projection.count("completed") > tasks // 2:
            break


def fresh_store_url(core: Core, tmp_path: Path) -> tuple[str, PgSchema | None]:
    if core.url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored' / 'events.sqlite'}", None
    schema = PgSchema()
    return schema.url, schema


def test_a_restored_backup_replays_to_the_original_projections(core: Core, tmp_path: Path) -> None:
    populate(core)
    at_backup = copy.deepcopy(rebuild(core.store))
    verified = backup(core.url, tmp_path / "store.backup")
    assert (verified.events, verified.position) == (at_backup.event_count, at_backup.position)
    core.submit(capabilities=["x"])  # after the backup: not in it
    target, schema = fresh_store_url(core, tmp_path)
    try:
        assert restore(tmp_path / "store.backup", target).position == at_backup.position
        restored = open_store(target)
        try:
            again = rebuild(restored)
        finally:
            restored.close()
        assert again.position == at_backup.position
        assert again.stats() == at_backup.stats()
        assert again.tasks == at_backup.tasks and again.agents == at_backup.agents
        with pytest.raises(BackupError, match="restore fills an empty"):
            restore(tmp_path / "store.backup", target)
    finally:
        if schema is not None:
            schema.drop()


def test_backups_never_overwrite_and_bad_files_are_refused(core: Core, tmp_path: Path) -> None:
    populate(core, tasks=4)
    target = tmp_path / "store.backup"
    backup(core.url, target)
    with pytest.raises(BackupError, match="exists: choose a new file"):
        backup(core.url, target)
    garbage = tmp_path / "garbage.backup"
    garbage.write_bytes(b"not a database at all" * 100)
    fresh, schema = fresh_store_url(core, tmp_path)
    try:
        with pytest.raises(BackupError):
            restore(garbage, fresh)
        with pytest.raises(BackupError, match="no such backup file"):
            restore(tmp_path / "missing", fresh)
    finally:
        if schema is not None:
            schema.drop()
    assert oct(target.stat().st_mode & 0o777) == "0o600"


def test_whoosh_backup_and_restore_commands(tmp_path: Path, sqlite_url: str) -> None:
    """The CLI: backup, restore into an empty data dir (a non-empty one refused), and
    `whoosh replay` of the restored store prints what the original's replay prints."""
    from whoosh_coordinator.assignment import Assigner
    from whoosh_coordinator.commands import CommandHandler
    from whoosh_coordinator.follower import Follower
    from whoosh_coordinator.projections import FleetProjection

    store = open_store(sqlite_url)
    projection = FleetProjection()
    handler = CommandHandler(store, projection, Follower(store, projection).fold_saved)
    populate(Core(sqlite_url, store, projection, handler, Assigner(handler, 0)), tasks=10)
    store.close()

    def whoosh(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"WHOOSH_CONFIG": "/dev/null", "WHOOSH_DATA_DIR": str(data_dir),
               "PATH": "/usr/bin:/bin"}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "whoosh_cli", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    original_dir = Path(sqlite_url.removeprefix("sqlite:///")).parent
    made = whoosh(original_dir, "backup", str(tmp_path / "b.sqlite"))
    assert made.returncode == 0 and "verified by replay" in made.stdout, made.stderr
    busy = whoosh(original_dir, "restore", str(tmp_path / "b.sqlite"))
    assert busy.returncode != 0 and "restore fills an empty data dir" in busy.stderr
    fresh = tmp_path / "fresh"
    restored = whoosh(fresh, "restore", str(tmp_path / "b.sqlite"))
    assert restored.returncode == 0, restored.stderr
    original = whoosh(original_dir, "--json", "replay")
    again = whoosh(fresh, "--json", "replay")
    assert again.returncode == 0 and again.stdout == original.stdout and original.stdout
