"""`whoosh backup FILE` / `whoosh restore FILE`: a consistent copy of the event store,
checked before it is trusted, and put back only where nothing would be overwritten.

SQLite: the online backup API copies a consistent snapshot while the coordinator keeps
writing (WAL readers do not block writers). PostgreSQL: `pg_dump` of the store's schema
(custom format), restored with `pg_restore`. Either way the copy is then verified: it
opens as a WHOOSH store and replays to projections, and the report says how many events
up to which notification id -- a backup that cannot be replayed is not reported as made.
The password of a PostgreSQL URL goes to pg_dump through its environment, never argv.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from whoosh_shared.runtime.store import store_env

from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.store import open_store

PG_TIMEOUT_S = 3600.0


class BackupError(RuntimeError):
    """Why a backup or restore was not made; nothing was left half-written."""


@dataclass(frozen=True)
class Verified:
    """What a replay of a store (or a copy) found."""

    events: int
    position: int
    agents: int
    tasks: int

    def describe(self) -> str:
        return (f"{self.events} events up to notification {self.position} "
                f"({self.agents} agents, {self.tasks} tasks)")  # fmt: skip


def verify_store(store_url: str) -> Verified:
    """Open the store and replay it: the proof a copy is usable."""
    store = open_store(store_url)
    try:
        projection = rebuild(store)
    finally:
        store.close()
    return Verified(projection.event_count, projection.position, len(projection.agents),
                    len(projection.tasks))  # fmt: skip


def backup(store_url: str, target: Path) -> Verified:
    if target.exists():
        raise BackupError(f"{target} exists: choose a new file (a backup never overwrites)")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = store_env(store_url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return _backup_sqlite(Path(env["SQLITE_DBNAME"]), target)
    return _backup_postgres(env, target)


def restore(source: Path, store_url: str) -> Verified:
    if not source.is_file():
        raise BackupError(f"{source}: no such backup file")
    env = store_env(store_url)
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return _restore_sqlite(source, Path(env["SQLITE_DBNAME"]))
    return _restore_postgres(source, env, store_url)


# -- SQLite ------------------------------------------------------------------------------


def _backup_sqlite(database: Path, target: Path) -> Verified:
    if not database.is_file():
        raise BackupError(f"no event store at {database}")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)  # the online backup API: one consistent snapshot
    finally:
        copy.close()
        source.close()
    try:
        partial.chmod(0o600)  # prompts and agents' env are in there
        _check_sqlite(partial)
        verified = verify_store(f"sqlite:///{partial}")
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return verified


def _restore_sqlite(source: Path, database: Path) -> Verified:
    if database.exists() and database.stat().st_size > 0:
        raise BackupError(
            f"{database} exists: restore fills an empty store; move the current one away first"
        )
    _check_sqlite(source)
    verified = verify_store(f"sqlite:///{source}")
    database.parent.mkdir(parents=True, exist_ok=True)
    partial = database.with_name(f".{database.name}.partial")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    writer = sqlite3.connect(partial)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()
    partial.chmod(0o600)
    partial.replace(database)
    return verified


def _check_sqlite(path: Path) -> None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (result,) = connection.execute("PRAGMA integrity_check").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite event store: {exc}") from None
    if result != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {result}")


# -- PostgreSQL --------------------------------------------------------------------------


def _pg_env(env: dict[str, str]) -> dict[str, str]:
    """libpq's environment (the password stays out of argv)."""
    return {
        **os.environ,
        "PGHOST": env["POSTGRES_HOST"],
        "PGPORT": env["POSTGRES_PORT"],
        "PGUSER": env["POSTGRES_USER"],
        "PGPASSWORD": env["POSTGRES_PASSWORD"],
        "PGDATABASE": env["POSTGRES_DBNAME"],
    }


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client tools")
    return found


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-500:]}")


def _backup_postgres(env: dict[str, str], target: Path) -> Verified:
    schema = env.get("POSTGRES_SCHEMA", "public")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    argv = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
            f"--schema={schema}", f"--file={partial}"]  # fmt: skip
    _run(argv, _pg_env(env))
    try:
        partial.chmod(0o600)
        verified = _verify_dump(partial, env)
    except Exception:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return verified


def _verify_dump(dump: Path, env: dict[str, str]) -> Verified:
    """Restore the dump into a scratch schema and replay it there, then drop it."""
    scratch = f"whoosh_verify_{os.getpid()}_{abs(hash(dump)) % 10**6}"
    return _restore_into(dump, env, scratch, keep=False)


def _restore_postgres(source: Path, env: dict[str, str], store_url: str) -> Verified:
    schema = env.get("POSTGRES_SCHEMA", "public")
    if _schema_has_tables(env, schema):
        raise BackupError(
            f"schema {schema!r} already holds tables: restore fills an empty store; "
            "drop it or name another schema (?schema=NAME)"
        )
    return _restore_into(source, env, schema, keep=True)


def _restore_into(dump: Path, env: dict[str, str], schema: str, keep: bool) -> Verified:
    """pg_restore the dump's one schema under the name `schema`, and replay it there."""
    with tempfile.TemporaryDirectory() as work:
        listing = Path(work) / "plain.sql"
        _run([_pg_tool("pg_restore"), "--no-owner", "--no-privileges", f"--file={listing}",
              str(dump)], _pg_env(env))  # fmt: skip
        original = _dumped_schema(listing.read_text())
        sql = listing.read_text().replace(f'"{original}".', f'"{schema}".')
        sql = sql.replace(f"{original}.", f"{schema}.")
        sql = sql.replace(f"CREATE SCHEMA {original};", f"CREATE SCHEMA IF NOT EXISTS {schema};")
        listing.write_text(sql)
        _run([_pg_tool("psql"), "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
              f"--file={listing}"], _pg_env(env))  # fmt: skip
    url = _pg_url(env, schema)
    try:
        return verify_store(url)
    finally:
        if not keep:
            _run([_pg_tool("psql"), "--quiet", "-c", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
                 _pg_env(env))  # fmt: skip


def _dumped_schema(sql: str) -> str:
    for line in sql.splitlines():
        if line.startswith("CREATE TABLE "):
            name = line.removeprefix("CREATE TABLE ").split(" ")[0]
            return name.split(".")[0].strip('"')
    raise BackupError("the dump holds no table: not a WHOOSH store backup")


def _schema_has_tables(env: dict[str, str], schema: str) -> bool:
    done = subprocess.run(
        [_pg_tool("psql"), "--quiet", "--tuples-only", "--no-align", "-c",
         f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"],
        env=_pg_env(env), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BackupError(f"psql failed: {done.stderr.strip()[-300:]}")
    return int(done.stdout.strip() or 0) > 0


def _pg_url(env: dict[str, str], schema: str) -> str:
    from urllib.parse import quote

    password = f":{quote(env['POSTGRES_PASSWORD'])}" if env["POSTGRES_PASSWORD"] else ""
    return (f"postgresql://{quote(env['POSTGRES_USER'])}{password}@{env['POSTGRES_HOST']}:"
            f"{env['POSTGRES_PORT']}/{env['POSTGRES_DBNAME']}?schema={schema}")  # fmt: skip
